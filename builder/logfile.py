"""The run log's file layout: a run header, then whole rounds; a torn tail told apart from damage.

    line 1        {"type": "run", "identity": {...}}      the options that decide the data
    then, per round: its `instruction` and `rejected` records, then its `round` marker

A crash can only ever leave a torn *tail*: the pipeline writes one round at a time and fsyncs it,
so whatever follows the last valid marker is a round that never finished, and reopening may cut
it. A bad line with a valid marker after it is something else (a disk error, an editor, a copy
cut short): the rounds after it are intact, so nothing is cut silently; readers raise
`RunLogDamagedError` naming the line, and `repair` moves the damaged round(s) into a file of their
own and keeps every complete round before and after them.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .records import ROUND, ROUND_RECORDS, RUN, Record

_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


class RunLogDamagedError(ValueError):
    """A line before the log's last complete round is not a valid record; nothing was changed."""


@dataclass(frozen=True)
class Damage:
    """A damaged span: from the end of the last good unit through the next valid round marker."""

    line: int  # the first bad line (1-based)
    reason: str
    start: int  # byte offsets of the span a repair moves aside
    end: int
    lines: tuple[int, int]  # its first and last line


@dataclass(frozen=True)
class Unit:
    """The run header, or one complete round (its records, its marker last), with its bytes."""

    records: list[Record]
    start: int
    end: int

    @property
    def is_header(self) -> bool:
        return self.records[0]["type"] == RUN


@dataclass
class Scan:
    """Everything about a log file that reopening or repairing it needs, in one pass."""

    header: Record | None = None
    end: int = 0  # bytes up to the last complete unit: what follows is a torn tail
    rounds: int = 0
    damage: list[Damage] = field(default_factory=list)


def units(path: Path) -> Iterator[Unit | Damage]:
    """The log's units in file order, streamed; a damaged span comes as one `Damage`.

    Lines after the last valid marker (a round that never finished) yield nothing.
    """
    if not path.exists():
        return
    pending: list[Record] = []
    start = offset = 0
    bad: tuple[int, str] | None = None  # the first bad line since the last good unit
    first_line = 1
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            offset += len(line)
            record, problem = parse_line(line, header=number == 1)
            if problem is not None:
                bad = bad or (number, problem)
            elif record["type"] in (RUN, ROUND):  # a unit ends here
                pending.append(record)
                if bad is None:
                    yield Unit(pending, start, offset)
                else:
                    yield Damage(*bad, start, offset, (first_line, number))
                pending, bad, start, first_line = [], None, offset, number + 1
            else:
                pending.append(record)


def parse_line(line: bytes, *, header: bool) -> tuple[Record | None, str | None]:
    """(record, None) for a valid line, else (None, what is wrong with it)."""
    if not line.endswith(b"\n"):
        return None, "a line cut short (no newline at its end)"
    if b"\0" in line:
        return None, "zeroed bytes"
    try:
        record = json.loads(line)
    except UnicodeDecodeError:
        return None, "not valid UTF-8"
    except ValueError:
        return None, "not valid JSON (a line cut short or overwritten)"
    if not isinstance(record, dict):
        kind = _JSON_TYPES.get(type(record), "null")
        return None, f"a JSON {kind} where a record object belongs"
    expected = {RUN} if header else ROUND_RECORDS
    if record.get("type") not in expected:
        where = "the run header" if header else "a round's record"
        return None, f"a record of type {record.get('type')!r} where {where} belongs"
    if record["type"] == ROUND and not isinstance(record.get(ROUND), int):
        return None, "a round marker without a round number"
    if record["type"] == RUN and not isinstance(record.get("identity"), dict):
        return None, "a run header without the run's options"
    return record, None


def scan(path: Path) -> Scan:
    """One pass over the log: its header, where its complete units end, every damaged span."""
    result = Scan()
    for unit in units(path):
        if isinstance(unit, Damage):
            result.damage.append(unit)
        elif unit.is_header:
            result.header = unit.records[0]
        else:
            result.rounds += 1
        result.end = unit.end
    return result


def damage_message(path: Path, damage: list[Damage]) -> str:
    """Where the log is damaged and what to do; the same words wherever it is found."""
    first = damage[0]
    more = f" (and {len(damage) - 1} more damaged span(s) after it)" if len(damage) > 1 else ""
    return (
        f"{path}, line {first.line}: {first.reason}{more}. The rounds after it are intact and "
        "nothing was changed. To keep every complete round, run `self-instruct generate` on "
        "this folder with the run's options and --resume --repair-log: it moves the damaged "
        f"round(s) (lines {first.lines[0]}-{first.lines[1]}) aside into a file of their own. Or "
        "restore the file from a backup."
    )


def require_intact(path: Path) -> None:
    """Raise `RunLogDamagedError` if the log has damage before its last complete round."""
    if damage := scan(path).damage:
        raise RunLogDamagedError(damage_message(path, damage))


@dataclass(frozen=True)
class Repair:
    """What `repair` did: where the damaged bytes went, and what was kept."""

    log: Path
    moved_to: Path | None
    spans: list[Damage]
    rounds_kept: int

    def __str__(self) -> str:
        if self.moved_to is None:
            return f"{self.log} has no damage; nothing to repair."
        spans = ", ".join(f"lines {d.lines[0]}-{d.lines[1]} ({d.reason})" for d in self.spans)
        return (
            f"moved {spans} of {self.log} to {self.moved_to}; kept {self.rounds_kept} complete "
            "rounds. The rounds moved aside are not generated again."
        )


def repair(path: Path, header: Record) -> Repair:
    """Move every damaged span into `damaged-<UTC time>.jsonl` beside the log; keep the rest.

    `header` replaces the run header when the damage took it. The damaged bytes are made durable
    first, then the log is rewritten through a temporary file and a rename, so a crash at any
    point leaves either the old log or the repaired one (never a log missing a span that is not
    safe in the side file). A torn tail is dropped, as reopening would.
    """
    found = scan(path)
    if not found.damage:
        return Repair(path, None, [], found.rounds)
    data = path.read_bytes()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved_to = path.with_name(f"damaged-{stamp}.jsonl")
    write_durably(moved_to, b"".join(data[d.start : d.end] for d in found.damage))
    kept = bytearray()
    if found.header is None:
        kept += _line(header)
    for unit in units(path):
        if isinstance(unit, Unit):
            kept += data[unit.start : unit.end]
    write_durably(path, bytes(kept))
    return Repair(path, moved_to, found.damage, found.rounds)


def _line(record: Record) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def encode(records: list[Record]) -> bytes:
    """Records as log lines (UTF-8 JSON, one a line)."""
    return b"".join(_line(record) for record in records)


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, all of it or nothing: a synced temporary file, a rename, then
    the folder synced too. A full disk or a kill leaves the old file whole, never a cut one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        os.chmod(tmp, mode)  # mkstemp creates 0600; keep the file as readable as before
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
