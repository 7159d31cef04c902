"""One process per output folder: a second `generate`, `push` or `audit` is refused at once, by
name, so that an audit never lands on the card of an export published while it judged.

Two real CLI processes (tests/cli_runs.py, the scripted backend slowed so that the first is still
running; the audit's judge is a server on 127.0.0.1 that answers when the test lets it); the lock
dies with its holder, `kill -9` included.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import datasets
import pytest
from cli_runs import LOG, count_rounds, finished_run_of, launch, refused, run_cli, wait_for_rounds
from test_audit import audit_args, judge_app

from self_instruct.audit.review import draw_sample, load_instances
from self_instruct.errors import OutputFolderError
from self_instruct.layout import RUN_DIR
from self_instruct.runlog.log import RunLog, read_log
from self_instruct.testing.local_server import LocalServer

ARGS = ["generate", "--num-instructions", "200", "--batch-size", "2", "--seed", "3"]
PAUSED = {"SI_TEST_DELAY": "0.3"}  # seconds per backend call: the first run outlives the test


def test_second_process_on_a_running_folder_is_refused(tmp_path):
    folder = tmp_path / "out"
    first = launch([*ARGS, "--output", str(folder)], PAUSED)
    try:
        assert wait_for_rounds(folder, 1, first)
        holder = f"{folder} is in use by another self-instruct process (pid {first.pid} on "
        for extra in (["--resume"], ["--overwrite"]):
            stderr = refused([*ARGS, "--output", str(folder), *extra], "generate")
            assert holder in stderr
        assert holder in refused(["push", str(folder), "me/data"], "push")
        assert first.poll() is None and (folder / LOG).exists()  # --overwrite deleted nothing
        rounds = count_rounds(folder)
        assert wait_for_rounds(folder, rounds + 1, first)  # and the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    # The kernel dropped the lock with its holder: the folder can be resumed at once.
    done = run_cli([*ARGS, "--num-instructions", "4", "--output", str(folder), "--resume"])
    assert done.returncode == 0, done.stderr
    markers = [r["round"] for r in read_log(folder / RUN_DIR) if r["type"] == "round"]
    assert markers == list(range(len(markers)))  # one writer: no round twice, none interleaved


def test_lock_file_names_its_holder_only_while_held(tmp_path):
    folder = tmp_path / "out"
    first = launch([*ARGS, "--output", str(folder)], PAUSED)
    try:
        assert wait_for_rounds(folder, 1, first)
        holder = json.loads((folder / RUN_DIR / "lock").read_text())
        assert holder["pid"] == first.pid
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert (folder / RUN_DIR / "lock").read_text() == ""


def exported(tmp_path: Path) -> Path:
    """A folder holding a finished run of 6 instructions and its export."""
    return finished_run_of([*ARGS[:2], "6", *ARGS[3:]], tmp_path)


def test_audit_beside_a_running_generate_is_refused_by_name(tmp_path):
    folder = exported(tmp_path)
    grow = launch([*ARGS, "--output", str(folder), "--resume"], PAUSED)
    try:
        assert wait_for_rounds(folder, count_rounds(folder) + 1, grow)
        with LocalServer(judge_app()) as server:
            stderr = refused(audit_args(folder, server.url), "audit")
        assert f"{folder} is in use by another self-instruct process (pid {grow.pid} on " in stderr
        assert "`self-instruct generate`" in stderr
        assert not server.app.attempts  # refused before the judge was asked anything
    finally:
        grow.send_signal(signal.SIGKILL)
        grow.communicate(timeout=60)


def test_no_export_is_published_while_an_audit_judges(tmp_path):
    folder = exported(tmp_path)
    go, app = threading.Event(), judge_app()
    answer = app.reply

    def held(prompt: str) -> str:
        go.wait(60)  # every verdict waits until the test lets the audit go on
        return answer(prompt)

    app.reply = held
    with LocalServer(app) as server:
        audit = launch(audit_args(folder, server.url))
        try:
            deadline = time.monotonic() + 60
            while not app.attempts:  # the audit drew its sample and is judging
                assert audit.poll() is None and time.monotonic() < deadline, audit.stderr.read()
                time.sleep(0.02)
            holder = f"{folder} is in use by another self-instruct process (pid {audit.pid} on "
            grow = [*ARGS[:2], "12", *ARGS[3:], "--output", str(folder)]
            for extra in (["--resume"], ["--overwrite"]):
                stderr = refused([*grow, *extra])
                assert holder in stderr and "`self-instruct audit`" in stderr
            assert holder in refused(["push", str(folder), "me/data"], "push")
        finally:
            go.set()
            audit.communicate(timeout=120)
    assert audit.returncode == 0
    # The card's audit is a sample of the export the card names, drawn as the audit draws it.
    audited = datasets.load_dataset(str(folder), "audit", split="train")["id"]
    assert audited == [item["id"] for item in draw_sample(load_instances(folder), 200, 42)]


@pytest.mark.parametrize("name", ["log.jsonl", "lock"])
def test_a_run_directory_is_never_written_through_a_link(tmp_path, name):
    """The builder's run log takes the lock too: a link in its run directory is refused, so
    neither a log line nor the lock's holder lands in someone else's file."""
    theirs = tmp_path / "theirs"
    theirs.write_bytes(b"" if name == "log.jsonl" else b"their own file")  # empty: a new log
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / name).symlink_to(theirs)
    with pytest.raises(OutputFolderError, match=f"{run_dir / name} is a symbolic link"):
        RunLog(run_dir, {"seed": 1}).open()
    assert theirs.read_bytes() == (b"" if name == "log.jsonl" else b"their own file")
