"""Where a run stands, from one pass over its log: what resuming, stopping and the card need.

The pipeline's resume (accepted so far, rejections, next round, idle rounds at the end), the
CLI's stop message (instructions kept, rounds), the card's funnel and usage, and the benchmarks
all read these counts from one `RunSummary`, filled by one streaming pass over the records (a
running pipeline keeps one live: its replay of the log fills it, each commit adds its round), so
the log is never held in memory and never re-read for one more number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from self_instruct.backends.base import add_counts
from self_instruct.prompting.filters import INSTANCE_REASONS, INSTRUCTION_REASONS
from self_instruct.runlog.records import (
    INSTRUCTION,
    REJECTED,
    ROUND,
    USAGE_KEYS,
    Instruction,
    Record,
)

NOTHING_PARSED = "nothing_parsed"  # an instance completion that held no instance at all
BEYOND_QUOTA = "beyond_quota"  # accepted past --num-instructions (the last round's surplus)


@dataclass
class RunSummary:
    """Counts over a run log's records; `quota` (--num-instructions) decides what is kept.

    Accepted instructions past the quota count as rejected `beyond_quota` and their instances
    are not counted. Rows imported from an earlier version (`--resume-from`) were not generated
    by this run: they count as `imported`, outside the funnel and the quota. An instruction
    whose instance completion parsed to no instance at all counts as one `nothing_parsed`
    instance rejection.
    """

    quota: int | None = None
    accepted: int = 0  # generated instructions accepted, the surplus over the quota included
    imported: int = 0
    imported_instances: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # instructions, by reason
    instances_kept: int = 0  # of the instructions within the quota
    instances_rejected: Counter[str] = field(default_factory=Counter)
    rounds: int = 0  # round markers
    next_round: int = 0  # one past the highest round number logged
    idle_rounds: int = 0  # rounds in a row at the end that accepted nothing
    usage: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))

    @property
    def kept(self) -> int:
        """Generated instructions that are in the data: the accepted ones up to the quota."""
        return self.accepted if self.quota is None else min(self.accepted, self.quota)

    def add(self, record: Record) -> None:
        """Count one record, in log order."""
        kind = record["type"]
        if kind == INSTRUCTION:
            self._add_instruction(record)
        elif kind == REJECTED:
            self.rejected[record["reason"]] += 1
        elif kind == ROUND:
            self.rounds += 1  # a repair's marker of rounds moved aside too: they are done
            self.next_round = max(self.next_round, record.get("last_round", record[ROUND]) + 1)
            busy = record.get("accepted") or record.get("imported")
            self.idle_rounds = 0 if busy else self.idle_rounds + 1
            for key in USAGE_KEYS:  # a token count is None where a server did not count
                self.usage[key] = add_counts(self.usage[key], record.get(key, 0))

    def _add_instruction(self, record: Instruction) -> None:
        if "imported_from" in record:
            self.imported += 1
            self.imported_instances += len(record["instances"])
            return
        self.accepted += 1
        if self.quota is not None and self.accepted > self.quota:
            return
        self.instances_kept += len(record["instances"])
        self.instances_rejected.update(x["reason"] for x in record["rejected_instances"])
        if not record["instances"] and not record["rejected_instances"]:
            self.instances_rejected[NOTHING_PARSED] += 1

    def funnel(self) -> dict[str, dict[str, Any]]:
        """Generated -> rejected by reason -> kept, for instructions and for instances."""
        rejected = self.rejected + Counter({BEYOND_QUOTA: self.accepted - self.kept})
        return {
            "instructions": _stage(INSTRUCTION_REASONS, rejected, self.kept, self.imported),
            "instances": _stage(
                (*INSTANCE_REASONS, NOTHING_PARSED),
                self.instances_rejected,
                self.instances_kept,
                self.imported_instances,
            ),
        }


def summarize(records: Iterable[Record], quota: int | None = None) -> RunSummary:
    """One pass over `records` (streamed: any length of log)."""
    summary = RunSummary(quota)
    for record in records:
        summary.add(record)
    return summary


def _stage(reasons: tuple[str, ...], counts: Counter, kept: int, imported: int) -> dict[str, Any]:
    return {
        "generated": kept + sum(counts.values()),
        "rejected": {k: counts[k] for k in reasons if counts[k]},
        "kept": kept,
        "imported": imported,
    }
