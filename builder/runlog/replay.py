"""A run log read back once: the data it replays, and what generation needs to go on from it.

Resuming or replaying a run used to read its log twice (once for the ROUGE-L pool, the counts
and the scheduler's history, once more for the instructions to replay), and an export a third
time for its funnel. `Replay.read` does all of it in one streaming pass: it counts every record
into the pipeline's live `RunSummary`, keeps the few things the scheduler reads back, and passes
on the accepted instructions that belong in the data, so the builder writes rows as the log is
read. Nothing generates until the pass is over, which is when the pool is complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from self_instruct.runlog.records import INSTRUCTION, ROUND, Instruction, Record
from self_instruct.runlog.summary import RunSummary


@dataclass
class Replay:
    """What one pass over a run log rebuilt, on top of the live `summary` it counts into."""

    summary: RunSummary
    texts: list[str] = field(default_factory=list)  # logged instructions: the pool after seeds
    prompts: list[int] = field(default_factory=list)  # the prompt of each accepted new one
    accepts: dict[int, int] = field(default_factory=dict)  # round -> accepted (imports: -1)

    def read(self, records: Iterable[Record]) -> Iterator[Instruction]:
        """Count every record; pass on the accepted instructions that are in the data.

        Those are the imported ones and the generated ones up to the quota (the summary's
        `kept`). The surplus a last round logged past the quota is counted (as `beyond_quota`)
        but not passed on, and the pass goes on to the end of the log whatever the quota, so the
        counts are those of the whole log.
        """
        for record in records:
            self.summary.add(record)
            if record["type"] == INSTRUCTION:
                self.texts.append(record["instruction"])
                if "prompt" in record:
                    self.prompts.append(record["prompt"])
                if "imported_from" in record or self.summary.accepted <= self.summary.kept:
                    yield record
            elif record["type"] == ROUND and "moved_to" not in record:  # not rounds moved aside
                self.accepts[record[ROUND]] = -1 if record.get("imported") else record["accepted"]

    def history(self) -> History:
        """Where generation goes on, and what its admission rule reads (generation/)."""
        summary = self.summary
        return History(summary.next_round, self.prompts, self.accepts, summary.accepted)


@dataclass
class History:
    """What the run log says so far: where to go on, and what the admission rule reads."""

    next_round: int
    accepted_prompts: list[int]  # the prompt index of each accepted new instruction, in order
    round_accepts: dict[int, int]  # committed round -> instructions it accepted (imports: -1)
    accepted: int  # new instructions committed
