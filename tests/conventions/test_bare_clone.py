"""A clone with nothing beside it (no ../shared) runs the same suite: the shared real run keeps
instances whatever the machine has, and a test that needs the reference data skips, saying which
file to put where.

The anchors are hidden as `make test-bare` hides them: SELF_INSTRUCT_ANCHORS names a folder
that does not exist, in a real pytest or Python subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from anchors import ANCHORS_ENV
from real_model_run import SIZES, generate_shared_run, shared_run_config

from self_instruct.backends.base import Completion
from self_instruct.testing.scripted_backend import TEMPLATES, ScriptedBackend

TESTS = Path(__file__).resolve().parents[1]


def hidden(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, ANCHORS_ENV: str(tmp_path / "no-anchors")}


def test_the_shared_run_is_the_same_with_or_without_the_anchors(tmp_path):
    """The fixture's options, as a bare clone computes them, equal those computed here."""
    code = "from real_model_run import shared_run_config; print(repr(shared_run_config()))"
    bare = subprocess.run(
        [sys.executable, "-c", code],
        cwd=TESTS,
        env=hidden(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert bare.stdout.strip() == repr(shared_run_config())
    assert shared_run_config().seeds == "bundled"  # the package's own seed tasks


def test_a_test_that_needs_the_anchors_says_what_to_put_where(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
        + ["cli/test_stats.py::test_paper_seed_tasks_match_an_independent_count"],
        cwd=TESTS,
        env=hidden(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
    said = " ".join(done.stdout.split())
    assert "1 skipped" in said
    missing = tmp_path / "no-anchors" / "self_instruct" / "seed_tasks.jsonl"
    assert f"reference data absent: {missing} (from github.com/yizhongw/self-instruct" in said
    assert f"put it there, or set {ANCHORS_ENV} to the folder that holds self_instruct/" in said


class NoInstancesAtFirst(ScriptedBackend):
    """The scripted model, whose first `dry` instance answers hold no instance at all."""

    def __init__(self, dry: int) -> None:
        super().__init__()
        self.dry, self.instance_requests = dry, 0

    def _complete(self, prompt, params):
        kinds = (TEMPLATES.instruction_header, TEMPLATES.classification_prefix)
        if prompt.startswith(kinds):
            return super()._complete(prompt, params)
        self.instance_requests += 1
        if self.instance_requests <= self.dry:
            return Completion("I would rather not.", "stop")
        return super()._complete(prompt, params)


def test_a_shared_run_that_keeps_no_instance_goes_on_until_it_does(tmp_path):
    first = NoInstancesAtFirst(dry=0)
    config, _ = generate_shared_run(tmp_path / "plain", first)
    assert config.num_instructions == SIZES[0]
    dry = NoInstancesAtFirst(dry=first.instance_requests)  # every answer of the first size
    config, result = generate_shared_run(tmp_path / "grown", dry)
    assert config.num_instructions == SIZES[1] and result.num_rows["instructions"] == SIZES[1]
    assert result.num_rows["instances"] >= 1
    assert result.funnel["instances"]["rejected"]["nothing_parsed"] >= first.instance_requests


@pytest.mark.slow
def test_the_shared_run_keeps_instances(generated_dataset):
    """What the slow tests build on: a loadable folder with instances and sft rows."""
    config, folder, result = generated_dataset
    assert result.num_rows["instructions"] == config.num_instructions
    assert result.num_rows["instances"] >= 1 and result.num_rows["sft"] >= 1
    assert (folder / "README.md").is_file()
