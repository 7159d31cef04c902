"""`kill -9`, Ctrl-C and SIGTERM against a real `self-instruct generate` process, then --resume.

The process runs the scripted backend (tests/cli_runs.py), slowed a little so that kills land in
the middle of rounds, of log writes and of the export. Whatever the kill points, the resumed run
must equal an uninterrupted one: same log records, same Parquet bytes, no row twice, none lost.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from cli_runs import (
    LOG,
    SCRIPTED_RUN,
    count_rounds,
    data_file,
    data_rows,
    launch,
    run_cli,
    wait_for_rounds,
)

from self_instruct.layout import CONFIG_NAMES, RUN_DIR
from self_instruct.runlog.log import read_log

ARGS = SCRIPTED_RUN  # the shared finished run (conftest's `scripted_run`) is the uninterrupted one
NUM_INSTRUCTIONS = int(ARGS[ARGS.index("--num-instructions") + 1])
SLOW = {"SI_TEST_DELAY": "0.03"}  # seconds per backend call: a round takes ~0.1 s
# For signals: a run must still be going when the signal lands, on a quiet machine too.
PAUSED = {"SI_TEST_DELAY": "0.5"}


@pytest.fixture
def uninterrupted(scripted_run):
    """What every interrupted run must end as: the shared run, never changed here."""
    return scripted_run


def logged(folder) -> list[dict]:
    """The log's records without the round markers (which carry timings)."""
    return [r for r in read_log(folder / RUN_DIR) if r["type"] != "round"]


def assert_same_dataset(folder, reference) -> None:
    """Same rows, same Parquet bytes, and rows that match the log: no duplicates, no gaps."""
    rows = data_rows(folder)
    assert rows == data_rows(reference)
    for name in CONFIG_NAMES:
        assert data_file(folder, name).read_bytes() == data_file(reference, name).read_bytes()
        ids = [row["id"] for row in rows[name]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate rows"
    rounds = [r["round"] for r in read_log(folder / RUN_DIR) if r["type"] == "round"]
    assert rounds == list(range(len(rounds))), "a round is missing or logged twice"
    accepted = [r for r in logged(folder) if r["type"] == "instruction"][:NUM_INSTRUCTIONS]
    assert [row["id"] for row in rows["instructions"]] == [r["id"] for r in accepted]
    instances = [f"{r['id']}-{k}" for r in accepted for k in range(len(r["instances"]))]
    assert [row["id"] for row in rows["instances"]] == instances
    assert logged(folder) == logged(reference)


def assert_log_ends_with_a_round(folder) -> None:
    data = (folder / LOG).read_bytes()
    assert data.endswith(b'"type": "round"}\n'), data[-200:]


def test_kill_9_at_random_points_then_resume(tmp_path, uninterrupted):
    seed = int(os.environ.get("CRASH_TEST_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    total = count_rounds(uninterrupted)
    # Kill points: three while rounds are generated (a random round, then a random moment
    # within it), one once every round is logged (in the export, or just after it).
    points = [*sorted(rng.sample(range(1, total), 3)), total]
    folder = tmp_path / "out"
    for n, rounds in enumerate(points):
        process = launch([*ARGS, "--output", str(folder), *(["--resume"] if n else [])], SLOW)
        if wait_for_rounds(folder, rounds, process):
            time.sleep(rng.uniform(0, 1.0 if rounds == total else 0.1))
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode in (0, -signal.SIGKILL), f"seed {seed}: {stderr}"
        if (folder / "README.md").exists():  # an export, if any, is whole: its files load
            assert all(data_rows(folder).values())
    done = run_cli([*ARGS, "--output", str(folder), "--resume"])
    assert done.returncode == 0, f"seed {seed}: {done.stderr}"
    assert_same_dataset(folder, uninterrupted)


@pytest.mark.parametrize(
    ("sig", "code", "says"),
    [(signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Stopped by SIGTERM.")],
)
def test_signal_stops_cleanly_and_says_how_to_resume(tmp_path, uninterrupted, sig, code, says):
    folder = tmp_path / "out"
    process = launch([*ARGS, "--output", str(folder)], PAUSED)
    assert wait_for_rounds(folder, 2, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert says in stderr and "has no export yet" in stderr
    assert f"To continue: self-instruct generate --output {folder} --resume" in stderr
    assert_log_ends_with_a_round(folder)  # the round in flight was dropped whole
    assert not (folder / "README.md").exists()
    done = run_cli([*ARGS, "--output", str(folder), "--resume"])
    assert done.returncode == 0, done.stderr
    assert_same_dataset(folder, uninterrupted)


def test_interrupted_resume_keeps_the_previous_export(tmp_path, uninterrupted):
    """Extending a finished run and stopping it: the folder still serves the first export."""
    folder = tmp_path / "out"
    short = [*ARGS, "--num-instructions", "10", "--output", str(folder)]
    assert run_cli(short).returncode == 0
    before = data_rows(folder)
    process = launch([*ARGS, "--output", str(folder), "--resume"], PAUSED)
    assert wait_for_rounds(folder, count_rounds(folder) + 1, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "still holds its previous export" in stderr
    assert data_rows(folder) == before
    assert len(before["instructions"]) == 10


@pytest.mark.parametrize(
    "tail",
    [
        b'{"type": "instruction", "id": "r0',  # torn mid-record
        b'{"type": "rejected", "round": 1, "text": "x", "reason": "too_short"}\n',  # no marker
        b'{"type": "round", "round": 1}',  # a whole marker but no newline: torn too
        # a record, then pages the power cut left zeroed: no valid marker after them, so torn
        b'{"type": "rejected", "round": 1, "text": "x", "reason": "too_short"}\n' + b"\0" * 300,
    ],
)
def test_reopening_cuts_a_torn_round_and_appends_cleanly(tmp_path, tail):
    from self_instruct.runlog.log import RunLog

    log = RunLog(tmp_path, {"seed": 1})
    log.open()
    log.append_round(
        [{"type": "rejected", "round": 0, "text": "a", "reason": "too_short"}], {"round": 0}
    )
    log.close()
    whole = (tmp_path / "log.jsonl").read_bytes()
    with (tmp_path / "log.jsonl").open("ab") as f:
        f.write(tail)
    reopened = RunLog(tmp_path, {"seed": 1})
    assert [r["type"] for r in reopened.open()] == ["rejected", "round"]
    assert (tmp_path / "log.jsonl").read_bytes() == whole
    reopened.append_round([], {"round": 1})
    reopened.close()
    assert [r["round"] for r in read_log(tmp_path) if r["type"] == "round"] == [0, 1]


@pytest.mark.parametrize(
    ("folder", "push", "command"),
    [
        ("my dir", None, "self-instruct generate --output 'my dir' --resume"),
        ("d", "me/ds", "self-instruct generate --output d --resume --push-to-hub me/ds"),
    ],
)
def test_resume_hint_never_deletes_the_run(folder, push, command):
    """The run's options are stored with it: the hint needs the folder only, never --overwrite."""
    from pathlib import Path

    from self_instruct.cli.resume import resume_command

    assert resume_command(Path(folder), push) == command
