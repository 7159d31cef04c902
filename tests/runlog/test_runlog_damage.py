"""A damaged run log or config.json, through the real CLI: refused with the line, never cut.

Only a torn tail (a round that never finished, at the end of the file) may be dropped on
reopening. A bad line with complete rounds after it stops `--resume`, `stats` and every reader,
changing nothing; `--repair-log` moves the damaged round aside, marks it so in the log, and keeps
all the others (damage that leaves valid JSON: test_runlog_verify.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runs import LOG, SCRIPTED_RUN, data_rows, refused, run_cli

from self_instruct.layout import CONFIG_FILE, RUN_DIR
from self_instruct.runlog.file import RunLogDamagedError
from self_instruct.runlog.log import read_log

ARGS = SCRIPTED_RUN
CONFIG = Path(RUN_DIR) / CONFIG_FILE

DAMAGE = {
    "cut_line": lambda line: line[: len(line) // 2] + b"\n",
    "zeroed_bytes": lambda line: b"\0" * (len(line) - 1) + b"\n",
    "invalid_utf8": lambda line: line.replace(b"e", b"\xff", 1),
    "not_an_object": lambda line: b'["a", "list"]\n',
    "unknown_record_type": lambda line: b'{"type": "note", "text": "hello"}\n',
}


def lines_of_round(log: Path, round_: int) -> range:
    """0-based indices of round `round_`'s lines in the log, its marker last."""
    lines = log.read_bytes().splitlines()
    rounds = [json.loads(line).get("round") for line in lines]
    first = rounds.index(round_)
    return range(first, len(rounds) - rounds[::-1].index(round_))


def damage(folder: Path, kind: str, round_: int = 2) -> tuple[int, bytes, bytes]:
    """Damage the first record of round `round_`; return (its 1-based line, old and new log)."""
    log = folder / LOG
    before = log.read_bytes()
    lines = before.splitlines(keepends=True)
    index = lines_of_round(log, round_)[0]
    lines[index] = DAMAGE[kind](lines[index])
    log.write_bytes(b"".join(lines))
    return index + 1, before, log.read_bytes()


@pytest.mark.parametrize("kind", DAMAGE)
def test_damage_mid_log_stops_resume_and_changes_nothing(run_folder, kind):
    assert max(r["round"] for r in read_log(run_folder / RUN_DIR) if r["type"] == "round") >= 5
    line, _, damaged = damage(run_folder, kind)
    stderr = refused([*ARGS, "--output", str(run_folder), "--resume"])
    assert f"{run_folder / LOG}, line {line}:" in stderr and "--repair-log" in stderr
    assert (run_folder / LOG).read_bytes() == damaged  # not cut, not appended to
    with pytest.raises(RunLogDamagedError, match=f"line {line}:"):
        list(read_log(run_folder / RUN_DIR))


def test_stats_on_a_folder_with_a_damaged_log_refuses(run_folder):
    line, _, _ = damage(run_folder, "zeroed_bytes")
    stderr = refused(["stats", str(run_folder)], command="stats")
    assert f"{run_folder / LOG}, line {line}: zeroed bytes" in stderr


@pytest.mark.parametrize("kind", ["cut_line", "not_an_object"])
def test_repair_log_moves_the_damaged_round_aside_and_keeps_every_other(run_folder, kind):
    log = run_folder / LOG
    span = lines_of_round(log, 2)
    _, _, damaged = damage(run_folder, kind)
    before_rows = data_rows(run_folder)["instructions"]
    done = run_cli([*ARGS, "--output", str(run_folder), "--resume", "--repair-log"])
    assert done.returncode == 0, done.stderr
    assert f"moved lines {span[0] + 1}-{span[-1] + 1}" in done.stdout

    damaged_lines = damaged.splitlines(keepends=True)
    (moved,) = (run_folder / RUN_DIR).glob("damaged-*.jsonl")
    assert moved.read_bytes() == b"".join(damaged_lines[span[0] : span[-1] + 1])
    lines = log.read_bytes().splitlines(keepends=True)
    assert json.loads(lines[span[0]]) == {  # in round 2's place: where it went
        "round": 2,
        "last_round": 2,
        "moved_to": moved.name,
        "records": 0,
        "sha256": json.loads(lines[span[0]])["sha256"],
        "type": "round",
    }
    kept = [line for i, line in enumerate(damaged_lines) if i not in span]
    assert (lines[: span[0]] + lines[span[0] + 1 :])[: len(kept)] == kept  # byte for byte

    rows = data_rows(run_folder)["instructions"]
    kept_ids = [row["id"] for row in before_rows if row["round"] != 2]
    assert [row["id"] for row in rows][: len(kept_ids)] == kept_ids
    assert len(rows) == 30 and not any(row["round"] == 2 for row in rows)


def test_deleted_config_does_not_let_resume_change_the_options(run_folder):
    stored = (run_folder / CONFIG).read_bytes()
    (run_folder / CONFIG).unlink()
    (run_folder / CONFIG).with_name("options.json").unlink()  # every copy but the log's header
    log = (run_folder / LOG).read_bytes()
    stderr = refused([*ARGS, "--temperature", "1.0", "--output", str(run_folder), "--resume"])
    assert "holds a run made with other options" in stderr
    assert "temperature: 0.7 -> 1.0" in stderr
    assert (run_folder / LOG).read_bytes() == log and not (run_folder / CONFIG).exists()
    done = run_cli([*ARGS, "--output", str(run_folder), "--resume"])  # the original options
    assert done.returncode == 0, done.stderr
    assert (run_folder / CONFIG).read_bytes() == stored  # restored from the log's header


@pytest.mark.parametrize(("content", "what"), [(b"", "is empty"), (b"[1, 2]", "JSON object")])
def test_empty_or_non_object_config_gets_one_message(run_folder, content, what):
    (run_folder / CONFIG).write_bytes(content)
    stderr = refused([*ARGS, "--output", str(run_folder), "--resume"])
    assert f"{run_folder / CONFIG} " in stderr and what in stderr and "delete it" in stderr


def test_repair_rebuilds_a_damaged_run_header(tmp_path):
    """Line 1 zeroed: refused; the repair moves it aside alone and writes the header again:
    round 0 verifies without it, so it is kept (it used to be moved aside with it)."""
    from self_instruct.runlog.log import RunLog

    log = RunLog(tmp_path, {"seed": 1})
    log.open()
    for round_ in range(3):
        rejected = {"type": "rejected", "round": round_, "text": "a", "reason": "too_short"}
        log.append_round([rejected], {"round": round_})
    log.close()
    path = tmp_path / "log.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(DAMAGE["zeroed_bytes"](lines[0]) + b"".join(lines[1:]))
    with pytest.raises(RunLogDamagedError, match="line 1: zeroed bytes"):
        RunLog(tmp_path, {"seed": 1}).open()
    done = RunLog(tmp_path, {"seed": 1}).repair()
    assert [d.lines for d in done.spans] == [(1, 1)] and done.rounds_kept == 3
    assert path.read_bytes() == b"".join(lines)
    assert (tmp_path / str(done.moved_to.name)).read_bytes() == DAMAGE["zeroed_bytes"](lines[0])
    reopened = RunLog(tmp_path, {"seed": 1})
    assert [r["round"] for r in reopened.open()] == [0, 0, 1, 1, 2, 2]
    reopened.close()


def test_repair_refuses_other_options_and_an_unverifiable_header(run_folder):
    repair = ["--output", str(run_folder), "--resume", "--repair-log"]
    _, _, damaged = damage(run_folder, "cut_line")
    assert "seed: 5 -> 6" in refused([*ARGS, "--seed", "6", *repair])
    lines = damaged.splitlines(keepends=True)
    (run_folder / LOG).write_bytes(DAMAGE["zeroed_bytes"](lines[0]) + b"".join(lines[1:]))
    (run_folder / CONFIG).unlink()
    stderr = refused([*ARGS, *repair])
    assert "its run header is damaged and config.json is missing" in stderr
    assert not list((run_folder / RUN_DIR).glob("damaged-*"))  # nothing was moved
