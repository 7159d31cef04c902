"""The run log's file layout: a run header, then whole rounds; a torn tail told apart from damage.

    line 1        {"type": "run", "identity": {...}}      the options that decide the data
    then, per round: its `instruction` and `rejected` records, then its `round` marker

Each marker seals its round (its number, record count and hash: runlog/check.py), so every round is
verified on its own. A crash can only ever leave a torn *tail*: the pipeline writes one round at
a time and fsyncs it, so whatever follows the last verified round and could be the start of the
next one is a round that never finished, and reopening may cut it. Anything else is damage (a
disk error, an editor, a copy cut short): nothing is cut silently; readers raise
`RunLogDamagedError` naming the line, and `repair` moves the damaged lines into a file of their
own, keeps every verified round, and marks the rounds it moved aside in the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from self_instruct.runlog.check import Damage, Line, Reader, Unit, encode, moved_marker, parse_line
from self_instruct.runlog.records import Record
from self_instruct.utils.durable import write_durably


class RunLogDamagedError(ValueError):
    """A line of the log is no part of a verified round, nor a torn tail; nothing was changed."""


@dataclass(frozen=True)
class LogState:
    """The rounds of a log, as an export records what it was built from: one past the last
    round's number, and the sha256 of the rounds' bytes (every line after the header)."""

    next_round: int
    sha256: str


@dataclass
class Scan:
    """Everything about a log file that reopening or repairing it needs, in one pass."""

    header: Record | None = None
    end: int = 0  # bytes up to the last unit: what follows is a torn tail
    rounds: int = 0
    next_round: int = 0
    unsealed: int = 0  # rounds written before rounds were sealed (checked by structure only)
    moved_from: int | None = None  # the first round a repair marked as moved aside
    damage: list[Damage] = field(default_factory=list)
    digest: Any = field(default_factory=hashlib.sha256)  # of the rounds' bytes so far
    digest_at: str | None = None  # of the rounds before `scan`'s `at`

    @property
    def state(self) -> LogState:
        return LogState(self.next_round, self.digest.hexdigest())


def units(path: Path) -> Iterator[Unit | Damage]:
    """The log's units in file order, streamed; each damaged span comes as one `Damage`.

    A torn tail (the start of a round that never finished) yields nothing.
    """
    if not path.exists():
        return
    reader = Reader()
    offset = 0
    with path.open("rb") as f:
        for number, data in enumerate(f, 1):
            record, problem = parse_line(data, header=number == 1)
            yield from reader.feed(Line(number, offset, data, record, problem))
            offset += len(data)
    yield from reader.finish()


def scan(path: Path, at: int | None = None) -> Scan:
    """One pass over the log: its header, its rounds, every damaged span; with `at`, the digest
    of its rounds before round `at` (what an export built from them recorded)."""
    result = Scan()
    for unit in units(path):
        result.end = unit.end
        if isinstance(unit, Damage):
            result.damage.append(unit)
        elif unit.is_header:
            result.header = unit.records[0]
        else:
            result.rounds += 1
            result.next_round = unit.rounds[1] + 1
            result.unsealed += not unit.sealed
            if unit.moved and result.moved_from is None:
                result.moved_from = unit.rounds[0]
            result.digest.update(unit.data)
            if result.next_round == at:
                result.digest_at = result.digest.hexdigest()
    return result


def damage_message(path: Path, damage: list[Damage]) -> str:
    """Where the log is damaged and what to do; the same words wherever it is found."""
    first = damage[0]
    more = f" (and {len(damage) - 1} more damaged span(s) after it)" if len(damage) > 1 else ""
    return (
        f"{path}, line {first.line}: {first.reason}{more}. Every other round verifies and "
        "nothing was changed. To keep them all, run `self-instruct generate` on this folder "
        "with the run's options and --resume --repair-log: it moves what does not verify ("
        + "; ".join(d.where() for d in damage)
        + ") aside into a file of its own, and those rounds are not generated again. Or "
        "restore the file from a backup."
    )


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
        spans = "; ".join(f"{d.where()} ({d.reason})" for d in self.spans)
        header = " and wrote its run header again" if self.spans[0].is_header else ""
        return (
            f"moved {spans} of {self.log} aside to {self.moved_to}{header}; kept "
            f"{self.rounds_kept} verified rounds. The rounds moved aside are marked so in the "
            "log and are not generated again."
        )


def repair(path: Path, header: Record) -> Repair:
    """Move every damaged span into `damaged-<UTC time>.jsonl` beside the log; keep the rest.

    `header` replaces a damaged run header (and only it: the rounds after it verify without
    it). Where a span held rounds, a marker of no records takes their numbers and names the
    side file, so the rounds still follow one another. The damaged bytes are made durable
    first, then the log is rewritten through a temporary file and a rename, so a crash at any
    point leaves either the old log or the repaired one (never a log missing a span that is not
    safe in the side file). A torn tail is dropped, as reopening would.
    """
    found = scan(path)
    if not found.damage:
        return Repair(path, None, [], found.rounds)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved_to = path.with_name(f"damaged-{stamp}.jsonl")
    write_durably(moved_to, b"".join(d.data for d in found.damage))
    kept = bytearray()
    for unit in units(path):
        if isinstance(unit, Unit):
            kept += unit.data
        elif unit.is_header:
            kept += encode([header])
        elif unit.rounds is not None:
            kept += moved_marker(*unit.rounds, moved_to.name)
    write_durably(path, bytes(kept))
    return Repair(path, moved_to, found.damage, found.rounds)
