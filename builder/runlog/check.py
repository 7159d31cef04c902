"""The run log checks itself: each round sealed by its marker, each line accounted for.

    {"round": 3, "accepted": 2, ..., "records": 5, "sha256": "<hex>", "type": "round"}

A round's marker carries the round's number, how many record lines come before it in the round
(`records`), and the sha256 of the round's bytes: those lines exactly, then the marker's own
fields but the hash, as one line (`seal`). Round numbers follow one another from 0 (or from the
number of the round that logs an import first), and every record carries its round. So each
round can be verified on its own, and `Reader` finds the damage that still leaves valid JSON (a
line deleted, duplicated or edited, a key's letter or a digit changed, a round duplicated,
swapped or missing) as surely as a line that is not JSON at all.

A crash leaves less: a round is one write, fsynced, so what follows the last verified round can
only be the start of a round still to come -- whole lines of its records, the last line cut
short, pages of zeroes -- and such a torn tail is all that reopening drops. Anything else after
the last round (a marker that does not verify, a line of a round before) is damage, never
dropped.

Rounds of logs written before markers were sealed (no `sha256`) are checked by structure alone:
their lines must be records with their keys, of the marker's round (their numbers are not
checked: audits of those versions numbered each session's batches from 0 again).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from self_instruct.runlog.records import (
    LIST_KEYS,
    REQUIRED_KEYS,
    ROUND,
    ROUND_RECORDS,
    RUN,
    Record,
    round_marker,
)

SEAL = "sha256"
COUNT = "records"
LAST_ROUND = "last_round"  # of the rounds a repair's marker stands for
MOVED_TO = "moved_to"
IMPORTED = "imported"  # a marker's key: the round that logs an earlier version's rows
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def encode(records: list[Record] | list[dict[str, Any]]) -> bytes:
    """Records as log lines (UTF-8 JSON, one a line)."""
    return b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8") for r in records)


def seal(records: list[Record], marker: Mapping[str, Any]) -> bytes:
    """A round's bytes: its records, then its marker (`round_marker`'s, or its fields alone)
    with their count and the round's hash."""
    lines = encode(records)
    body = {**{k: v for k, v in marker.items() if k != "type"}, COUNT: len(records)}
    return lines + encode([round_marker({**body, SEAL: _hash(lines, body)})])


def moved_marker(first: int, last: int, moved_to: str) -> bytes:
    """What `--repair-log` writes where rounds `first`..`last` were: a round of no records that
    says where they went, so the numbers still follow one another."""
    return seal([], {ROUND: first, LAST_ROUND: last, MOVED_TO: moved_to})


def _hash(lines: bytes, body: dict[str, Any]) -> str:
    return hashlib.sha256(lines + encode([body])).hexdigest()


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    start: int  # byte offset
    data: bytes
    record: Record | None
    problem: str | None  # why it is no valid record, or why its round does not verify


@dataclass(frozen=True)
class Unit:
    """The run header, or one verified round (its records, its marker last), with its bytes."""

    records: list[Record]
    start: int
    data: bytes
    rounds: tuple[int, int] | None = None  # its round numbers (None: the header)
    sealed: bool = True

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    @property
    def is_header(self) -> bool:
        return self.rounds is None

    @property
    def moved(self) -> bool:
        """A repair's marker, standing for rounds moved aside."""
        return MOVED_TO in self.records[-1]


@dataclass(frozen=True)
class Damage:
    """Lines that are no verified round, and the round numbers missing where they are."""

    line: int  # the line to name: the first bad one (1-based)
    reason: str
    start: int  # byte offsets of the span a repair moves aside
    data: bytes
    lines: tuple[int, int]  # its first and last line (last < first: no line, rounds missing)
    rounds: tuple[int, int] | None = None  # a repair marks these as moved aside

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    @property
    def is_header(self) -> bool:
        return self.lines == (1, 1)

    def where(self) -> str:
        """Its lines and the rounds they held, in words."""
        first, last = self.lines
        if first > last:
            return f"{_rounds(self.rounds)}, missing before line {first}"
        held = "" if self.rounds is None else f" of {_rounds(self.rounds)}"
        return f"lines {first}-{last}{held}"


def _rounds(rounds: tuple[int, int]) -> str:
    first, last = rounds
    return f"round {first}" if first == last else f"rounds {first}-{last}"


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
    if record["type"] == ROUND and ROUND not in record:
        return None, "a round marker without a round number"
    if not isinstance(record.get(ROUND, 0), int):
        return None, f"a {record['type']} record whose round is no whole number"
    if record["type"] == RUN and not isinstance(record.get("identity"), dict):
        return None, "a run header without the run's options"
    return (None, problem) if (problem := _missing_keys(record)) else (record, None)


def _missing_keys(record: dict[str, Any]) -> str | None:
    """What a reader would index in vain: the record's keys, those of its lists' objects."""
    kind = record["type"]
    a_kind = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} record"
    if missing := [key for key in REQUIRED_KEYS.get(kind, ()) if key not in record]:
        return f"{a_kind} without its {', '.join(map(repr, missing))} key"
    for key, keys in LIST_KEYS.items():
        items = record.get(key, [])
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and all(k in item for k in keys) for item in items
        ):
            return f"{a_kind} whose {key!r} are not objects with {', '.join(keys)}"
    return None


@dataclass
class Reader:
    """Turns a log's lines, in order, into its units and its damaged spans (`feed`, `finish`)."""

    expected: int = 0  # the number the next round must carry
    rounds_read: int = 0
    pending: list[Line] = field(default_factory=list)  # since the last unit
    bad_header: Line | None = None

    def feed(self, line: Line) -> Iterator[Unit | Damage]:
        if line.number == 1:
            if line.problem is None:
                yield Unit([line.record], line.start, line.data)
            else:
                self.bad_header = line  # a torn tail if nothing follows
            return
        if self.bad_header is not None:
            yield self._span([self.bad_header])
            self.bad_header = None
        if line.record is None or line.record["type"] != ROUND:
            self.pending.append(line)
        elif SEAL in line.record:
            yield from self._sealed(line)
        else:
            yield from self._unsealed(line)

    def finish(self) -> Iterator[Damage]:
        """What follows the last unit: nothing if it is a torn tail, else one damaged span."""
        lines = [self.bad_header] if self.bad_header else self.pending
        if lines and not all(self._torn(line) for line in lines):
            claimed = [ln.record[ROUND] for ln in lines if ln.record and ROUND in ln.record]
            last = max(claimed, default=-1)
            yield self._span(lines, (self.expected, last) if last >= self.expected else None)
        self.pending, self.bad_header = [], None

    def _torn(self, line: Line) -> bool:
        """Whether `line` can be what a crash in the next round's write left."""
        if not line.data.endswith(b"\n") or b"\0" in line.data:
            return True
        record = line.record  # a record of a round before is a copy: no write puts it there
        return (
            record is not None
            and record["type"] != ROUND
            and record.get(ROUND, self.expected) >= self.expected
        )

    def _sealed(self, line: Line) -> Iterator[Unit | Damage]:
        marker, count = line.record, line.record.get(COUNT)
        if problem := self._seal_problem(marker, count):
            self.pending.append(replace(line, problem=problem))
            return
        number = marker[ROUND]
        if not self.rounds_read and marker.get(IMPORTED):  # an import logs its own number
            self.expected = number
        if number < self.expected:
            problem = f"round {number} again after round {self.expected - 1} (a round duplicated"
            self.pending.append(replace(line, problem=f"{problem} or out of order)"))
            return
        split = len(self.pending) - count
        body, stray = self.pending[split:], self.pending[:split]
        gap = (self.expected, number - 1) if number > self.expected else None
        if stray or gap:
            yield self._span(stray, gap, at=body[0] if body else line)
        yield self._unit([*body, line], (number, marker.get(LAST_ROUND, number)), sealed=True)

    def _seal_problem(self, marker: Record, count: Any) -> str | None:
        """Why the `count` lines before `marker` are not its round, or None."""
        number = marker[ROUND]
        if not isinstance(count, int) or count < 0:
            return f"round {number}'s marker without its record count"
        if count > len(self.pending):
            return (
                f"round {number}'s marker counts {count} record lines, but only "
                f"{len(self.pending)} follow the round before it (a line deleted?)"
            )
        body = self.pending[len(self.pending) - count :]
        if MOVED_TO in marker and (count or not isinstance(marker.get(LAST_ROUND), int)):
            return f"round {number}'s marker of rounds moved aside, without its rounds"
        for ln in body:
            if ln.problem or (ln.record.get(ROUND) != number and "imported_from" not in ln.record):
                break
        else:
            fields = {k: v for k, v in marker.items() if k not in (SEAL, "type")}
            if _hash(b"".join(ln.data for ln in body), fields) == marker[SEAL]:
                return None
        return (
            f"round {number} does not match the hash its marker carries (a line of it deleted, "
            "duplicated or edited, or the marker itself)"
        )

    def _unsealed(self, line: Line) -> Iterator[Unit | Damage]:
        """A round of a log of an earlier version: whatever precedes its marker, checked by
        structure (valid records of its round)."""
        number = line.record[ROUND]
        lines = [*(_of_round(ln, number) for ln in self.pending), line]
        if any(ln.problem for ln in lines):
            yield self._span(lines, (number, number) if number >= self.expected else None)
            self.expected, self.pending = max(self.expected, number + 1), []
        else:
            yield self._unit(lines, (number, number), sealed=False)

    def _unit(self, lines: list[Line], rounds: tuple[int, int], *, sealed: bool) -> Unit:
        """The unit of `lines`, its marker last; the next round must follow `rounds`."""
        records = [ln.record for ln in lines]
        self.expected = max(self.expected, rounds[1] + 1)
        self.rounds_read += 1
        self.pending = []
        return Unit(records, lines[0].start, b"".join(ln.data for ln in lines), rounds, sealed)

    def _span(
        self, lines: list[Line], rounds: tuple[int, int] | None = None, at: Line | None = None
    ) -> Damage:
        """Damage: `lines` (maybe none, before line `at`), and the rounds missing there."""
        bad = next((ln for ln in lines if ln.problem), None)
        if bad is not None:
            number, reason = bad.number, bad.problem
        elif lines:
            number, reason = lines[0].number, "a record line that no round counts (duplicated?)"
        else:
            number, reason = at.number, f"{_rounds(rounds)} not in the log (deleted, or moved)"
        if lines:
            start, span = lines[0].start, (lines[0].number, lines[-1].number)
        else:
            start, span = at.start, (at.number, at.number - 1)
        data = b"".join(ln.data for ln in lines)
        return Damage(number, reason, start, data, span, rounds)


def _of_round(line: Line, number: int) -> Line:
    """`line`, with a problem if it is a record of a round other than `number` (an import's
    records keep the rounds of the version they come from)."""
    record = line.record
    if record is None or record.get(ROUND, number) == number or "imported_from" in record:
        return line
    return replace(line, problem=f"a record of round {record[ROUND]} in round {number}")
