"""Damage that leaves valid JSON, and a log that no longer matches its export, through the CLI.

Each round's marker seals it (its number, record count and hash), so a line deleted, duplicated
or edited, a round duplicated, swapped or missing, a key's changed letter and a flipped byte in
the last marker are all damage: `--resume`, `stats` and every reader stop at the same line, and
`--repair-log` moves aside only the rounds that do not verify. A log that holds less than the
export beside it was built from (emptied, its header only, shortened, other rounds) is refused,
never generated again silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runs import LOG, SCRIPTED_RUN, data_rows, refused, run_cli

from self_instruct.layout import CARD, EXPORTED_FROM, RUN_DIR
from self_instruct.runlog.file import RunLogDamagedError
from self_instruct.runlog.log import RunLog, read_log

ARGS = SCRIPTED_RUN


def round_of(line: bytes) -> int | None:
    try:
        return json.loads(line).get("round")
    except ValueError:
        return None


def span(lines: list[bytes], round_: int) -> list[int]:
    """0-based indices of round `round_`'s lines, its marker last."""
    return [i for i, line in enumerate(lines) if i and round_of(line) == round_]


def flip(line: bytes, after: bytes) -> bytes:
    """`line` with the lowest bit of the byte just after `after` flipped (a digit stays one)."""
    at = line.index(after) + len(after)
    return line[:at] + bytes([line[at] ^ 1]) + line[at + 1 :]


def deleted_line(lines):
    r2 = span(lines, 2)
    del lines[r2[1]]
    return r2[-1], 2  # the 1-based line of round 2's marker, the round that does not verify


def duplicated_line(lines):
    r2 = span(lines, 2)
    lines.insert(r2[1], lines[r2[1]])
    return r2[-1] + 2, 2


def duplicated_round(lines):
    r2 = span(lines, 2)
    lines[r2[-1] + 1 : r2[-1] + 1] = [lines[i] for i in r2]
    return r2[-1] + 1 + len(r2), 2  # the copy's marker


def swapped_rounds(lines):
    r2, r3 = span(lines, 2), span(lines, 3)
    lines[r2[0] : r3[-1] + 1] = [lines[i] for i in r3 + r2]
    return r2[0] + 1, 2  # round 3's first line, where round 2 belongs


def missing_round(lines):
    r2 = span(lines, 2)
    del lines[r2[0] : r2[-1] + 1]
    return r2[0] + 1, 2


def changed_key(lines):
    (index, *_) = (i for i in span(lines, 2) if b'"type": "instruction"' in lines[i])
    lines[index] = lines[index].replace(b'"instances":', b'"instancez":')
    return index + 1, 2


def flipped_last_marker(lines):
    lines[-1] = flip(lines[-1], b'"prompt_tokens": ')  # still valid JSON: another number
    return len(lines), round_of(lines[-1])


def flipped_last_marker_json(lines):
    round_ = round_of(lines[-1])
    lines[-1] = flip(lines[-1], b'{"round"')  # ':' becomes ';': not JSON any more
    return len(lines), round_


DAMAGE = {
    f.__name__: f
    for f in (
        deleted_line,
        duplicated_line,
        duplicated_round,
        swapped_rounds,
        missing_round,
        changed_key,
        flipped_last_marker,
        flipped_last_marker_json,
    )
}


def damage(folder: Path, kind: str) -> tuple[int, int, list[bytes]]:
    """Damage the log as `kind` does: (the line to be named, the round moved aside, lines)."""
    log = folder / LOG
    lines = log.read_bytes().splitlines(keepends=True)
    line, round_ = DAMAGE[kind](lines)
    log.write_bytes(b"".join(lines))
    return line, round_, lines


def error_line(stderr: str, command: str) -> str:
    (line,) = [x for x in stderr.splitlines() if x.startswith(f"self-instruct {command}: error:")]
    return line.split(": error: ", 1)[1]


@pytest.mark.parametrize("kind", DAMAGE)
def test_valid_json_damage_stops_resume_and_stats_at_the_same_line(run_folder, kind):
    line, _, _ = damage(run_folder, kind)
    damaged = (run_folder / LOG).read_bytes()
    resumed = error_line(refused([*ARGS, "--output", str(run_folder), "--resume"]), "generate")
    assert resumed.startswith(f"{run_folder / LOG}, line {line}: ") and "--repair-log" in resumed
    assert (run_folder / LOG).read_bytes() == damaged  # not cut, not appended to
    assert error_line(refused(["stats", str(run_folder)], command="stats"), "stats") == resumed
    with pytest.raises(RunLogDamagedError, match=f"line {line}: "):
        list(read_log(run_folder / RUN_DIR))


@pytest.mark.parametrize(
    "kind", ["deleted_line", "swapped_rounds", "changed_key", "flipped_last_marker"]
)
def test_repair_log_moves_aside_only_the_round_that_does_not_verify(run_folder, kind):
    before = data_rows(run_folder)["instructions"]
    _, moved_round, damaged = damage(run_folder, kind)
    moved = [i for i, line in enumerate(damaged) if i and round_of(line) == moved_round]
    done = run_cli([*ARGS, "--output", str(run_folder), "--resume", "--repair-log"])
    assert done.returncode == 0, done.stderr

    (side,) = (run_folder / RUN_DIR).glob("damaged-*.jsonl")
    assert side.read_bytes() == b"".join(damaged[i] for i in moved)
    lines = (run_folder / LOG).read_bytes().splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    markers = [r for r in records if r["type"] == "round"]
    assert [m["round"] for m in markers] == list(range(len(markers)))  # no gap, no repeat
    assert markers[moved_round]["moved_to"] == side.name
    kept = [line for i, line in enumerate(damaged) if i not in moved]
    assert [x for x in lines if b'"moved_to"' not in x][: len(kept)] == kept  # byte for byte

    rows = data_rows(run_folder)["instructions"]
    kept_ids = [row["id"] for row in before if row["round"] != moved_round]
    assert [row["id"] for row in rows][: len(kept_ids)] == kept_ids
    assert len(rows) == 30 and not any(row["round"] == moved_round for row in rows)


def test_changed_key_resume_stats_and_repair_log_report_the_same_damage(run_folder):
    """It was a traceback on resume, while `stats` exited 0 and the repair found no damage."""
    line, _, _ = damage(run_folder, "changed_key")
    resumed = error_line(refused([*ARGS, "--output", str(run_folder), "--resume"]), "generate")
    reason = f"line {line}: an instruction record without its 'instances' key"
    assert reason in resumed
    assert error_line(refused(["stats", str(run_folder)], command="stats"), "stats") == resumed
    done = run_cli([*ARGS, "--output", str(run_folder), "--resume", "--repair-log"])
    assert done.returncode == 0, done.stderr
    assert "an instruction record without its 'instances' key" in done.stdout
    assert "Traceback" not in done.stderr


def test_repair_of_a_damaged_header_keeps_round_0_and_every_other(run_folder):
    log = run_folder / LOG
    whole = log.read_bytes()
    rows = data_rows(run_folder)
    first, rest = whole.split(b"\n", 1)
    log.write_bytes(b"\0" * len(first) + b"\n" + rest)
    done = run_cli([*ARGS, "--output", str(run_folder), "--resume", "--repair-log"])
    assert done.returncode == 0, done.stderr
    assert "moved lines 1-1 (zeroed bytes)" in done.stdout
    assert "wrote its run header again; kept 9 verified rounds" in done.stdout
    assert log.read_bytes() == whole  # the header written again from the options, all rounds
    assert data_rows(run_folder) == rows


@pytest.mark.parametrize("state", ["emptied", "header_only", "emptied_export_of_old_version"])
def test_emptied_log_beside_an_export_is_refused_not_generated_again(run_folder, state):
    log, card = run_folder / LOG, (run_folder / CARD).read_bytes()
    header = log.read_bytes().split(b"\n", 1)[0] + b"\n"
    log.write_bytes(header if state == "header_only" else b"")
    if state == "emptied_export_of_old_version":  # an export that recorded no log state
        (run_folder / RUN_DIR / EXPORTED_FROM).unlink()
    stderr = refused([*ARGS, "--output", str(run_folder), "--resume"])
    assert f"{run_folder / LOG} no longer matches the export beside it" in stderr
    assert "but the log holds no round" in stderr and "--overwrite" in stderr
    assert log.read_bytes() == (header if state == "header_only" else b"")
    assert (run_folder / CARD).read_bytes() == card
    assert "no longer matches the export" in refused(["stats", str(run_folder)], "stats")


def test_shortened_log_beside_an_export_is_refused(run_folder):
    log = run_folder / LOG
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[: span(lines, 5)[-1] + 1]))  # rounds 6-8 gone, cut cleanly
    stderr = refused([*ARGS, "--output", str(run_folder), "--resume"])
    assert "built from its rounds up to round 8" in stderr
    assert "the log holds only rounds up to round 5" in stderr


def test_other_rounds_beside_an_export_are_refused(run_folder):
    """Round 8 edited and sealed again: every round verifies, but it is not what was exported."""
    from self_instruct.runlog.check import seal

    log = run_folder / LOG
    lines = log.read_bytes().splitlines(keepends=True)
    r8 = span(lines, 8)
    records = [json.loads(lines[i]) for i in r8[:-1]]
    records[0] = {**records[0], **{"text" if "text" in records[0] else "instruction": "edited"}}
    marker = {k: v for k, v in json.loads(lines[r8[-1]]).items() if k not in ("records", "sha256")}
    log.write_bytes(b"".join(lines[: r8[0]]) + seal(records, marker))
    list(read_log(run_folder / RUN_DIR))  # not damaged
    stderr = refused([*ARGS, "--output", str(run_folder), "--resume"])
    assert "the log holds other rounds up to there (their hash differs)" in stderr


def unsealed(folder: Path) -> None:
    """The log as versions before sealed rounds wrote it: markers without count and hash."""
    log = folder / LOG
    records = [json.loads(line) for line in log.read_bytes().splitlines()]
    for record in records:
        record.pop("records", None)
        record.pop("sha256", None)
    log.write_bytes(b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode() for r in records))
    (folder / RUN_DIR / EXPORTED_FROM).unlink()


def test_log_of_an_earlier_version_resumes_with_a_notice_and_new_rounds_sealed(run_folder):
    unsealed(run_folder)
    before = data_rows(run_folder)["instructions"]
    done = run_cli([*ARGS, "--num-instructions", "40", "--output", str(run_folder), "--resume"])
    assert done.returncode == 0, done.stderr
    assert "9 rounds were written by an earlier version, without a hash" in done.stderr
    markers = [r for r in read_log(run_folder / RUN_DIR) if r["type"] == "round"]
    assert [m["round"] for m in markers] == list(range(len(markers))) and len(markers) > 9
    assert not any("sha256" in m for m in markers[:9]) and all("sha256" in m for m in markers[9:])
    assert data_rows(run_folder)["instructions"][:30] == before


def test_log_of_an_earlier_version_is_checked_by_its_structure(run_folder):
    unsealed(run_folder)
    line, _, _ = damage(run_folder, "changed_key")
    stderr = refused([*ARGS, "--output", str(run_folder), "--resume"])
    assert f"line {line}: an instruction record without its 'instances' key" in stderr


def _log_of_two_rounds(folder: Path) -> bytes:
    log = RunLog(folder, {"seed": 1})
    log.open()
    for round_ in range(2):
        rejected = {"type": "rejected", "round": round_, "text": "a", "reason": "too_short"}
        log.append_round([rejected], {"round": round_})
    log.close()
    return (folder / "log.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("tail", "line"),
    [
        (b'{"type": "rejected", "round": 0, "text": "a", "reason": "too_short"}\n', 6),  # round 0's
        (b"not json at all\n", 6),  # a whole line: no write of ours ends like that
        (b"REPEAT", 6),  # the last marker again
        (b'{"type": "rejected", "round": 2, "text": "a", "reason": "too_short"}\nnot json\n', 7),
    ],
)
def test_a_tail_no_crash_can_leave_is_damage_not_dropped(tmp_path, tail, line):
    whole = _log_of_two_rounds(tmp_path)
    if tail == b"REPEAT":
        tail = whole.splitlines(keepends=True)[-1]
    (tmp_path / "log.jsonl").write_bytes(whole + tail)
    with pytest.raises(RunLogDamagedError, match=f"line {line}: "):
        RunLog(tmp_path, {"seed": 1}).open()
    assert (tmp_path / "log.jsonl").read_bytes() == whole + tail


def test_a_damaged_round_of_an_earlier_version_is_moved_aside_alone(tmp_path):
    whole = _log_of_two_rounds(tmp_path)
    lines = [json.loads(line) for line in whole.splitlines()]
    for record in lines:
        record.pop("records", None)
        record.pop("sha256", None)
    lines = [(json.dumps(r) + "\n").encode() for r in lines]
    lines[1] = lines[1].replace(b'"reason"', b'"reasom"')
    (tmp_path / "log.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(RunLogDamagedError, match="line 2: a rejected record without its 'reason'"):
        list(read_log(tmp_path))
    done = RunLog(tmp_path, {"seed": 1}).repair()
    assert [(d.lines, d.rounds) for d in done.spans] == [((2, 3), (0, 0))]
    assert [r["round"] for r in read_log(tmp_path)] == [0, 1, 1]


def test_each_round_verifies_on_its_own(tmp_path):
    """Round 0 damaged, round 1 intact: only round 0 is moved aside, and marked so."""
    whole = _log_of_two_rounds(tmp_path)
    lines = whole.splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"a"', b'"b"')
    (tmp_path / "log.jsonl").write_bytes(b"".join(lines))
    done = RunLog(tmp_path, {"seed": 1}).repair()
    assert [(d.lines, d.rounds) for d in done.spans] == [((2, 3), (0, 0))]
    reopened = RunLog(tmp_path, {"seed": 1})
    records = list(reopened.open())
    reopened.close()
    assert [r["round"] for r in records] == [0, 1, 1] and "moved_to" in records[0]
    assert (tmp_path / "log.jsonl").read_bytes().endswith(b"".join(lines[3:]))
