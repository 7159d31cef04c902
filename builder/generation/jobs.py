"""What the scheduler and the pipeline hand each other, and the rules that end a run.

A `Job` is one request with what its step needs back; a `Candidate` is an instruction on its way
from its prompt's answer to its instances; `Steps` is what the pipeline does at each step
(generation/scheduler.py decides only when). `History` is what the run log says so far, and
`run_is_over` the one rule, judged on committed rounds alone, that ends a run: the quota met or
the patience spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from self_instruct.backends.base import Completion, Prompt, SamplingParams
from self_instruct.runlog.records import Record
from self_instruct.runlog.replay import History

# Dispatch priority: later steps first, so accepted instructions leave before new ones come in.
INSTANCES, CLASSIFICATION, INSTRUCTIONS = "instances", "classification", "instruction lists"
FOLLOW_UPS = (INSTANCES, CLASSIFICATION)


class RequestsFailedError(RuntimeError):
    """Requests of a round failed for good; the round was not logged, so a resume redoes it."""

    def __init__(self, round_: int, failed: int, total: int) -> None:
        super().__init__(
            f"{failed} of {total} requests of round {round_} failed for good (every retry spent); "
            "the round was not logged, so a resume sends it again"
        )
        self.round, self.failed = round_, failed


@dataclass
class Job:
    """One request and what the pipeline needs back with its answer (`subject`)."""

    step: str
    round: int
    prompt: Prompt  # text, or messages for a chat model
    params: SamplingParams
    subject: Any


@dataclass
class Parsed:
    """One instruction prompt's answer, read: what the parser and the heuristics rejected, and
    the instructions left for the ROUGE-L filter (`texts`, in answer order)."""

    rejections: list[Record]
    texts: list[str]


@dataclass
class Candidate:
    """Instruction `key` = (prompt index, place among its answer's `texts`) that may be kept.

    Its classification and instance requests are sent before the filter decides it (the filter
    waits for every earlier prompt): what they answer depends on `key` and `text` alone, so the
    data is the same whenever the decision comes. Rejected, it is `dead` and its answers are
    dropped; accepted, it gets its `record` and, with its instances, leaves the pipeline.
    """

    round: int
    key: tuple[int, int]
    text: str
    record: Record | None = None
    instances: tuple[Job, Completion] | None = None
    dead: bool = False


class Steps(Protocol):
    """What the pipeline does at each step; the scheduler decides only when."""

    def instruction_job(self, prompt_index: int, round_: int, visible: int) -> Job:
        """Prompt `prompt_index`, sampling from the first `visible` new pool instructions."""

    def parse(self, job: Job, answer: Completion) -> Parsed: ...

    def pool_rejects(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is already too similar to the pool: rejected, whatever joins the
        pool before its turn (so no request is sent for it)."""

    def filter_prompts(
        self, parsed: Sequence[tuple[Job, Parsed]]
    ) -> list[tuple[list[Record], dict[int, Record]]]:
        """Consecutive prompts, in order -> each one's rejections and its accepted instructions'
        records by their place among `texts`."""

    def classification_job(self, candidate: Candidate) -> Job: ...

    def instance_job(self, candidate: Candidate, answer: Completion) -> Job: ...

    def add_instances(self, record: Record, job: Job, answer: Completion) -> None: ...

    def commit(self, round_: int, records: list[Record], marker: dict[str, Any]) -> None: ...


@dataclass
class Limits:
    """The options the scheduler reads: all of them decide the data, none says how fast."""

    batch_size: int
    sample_lag: int
    num_instructions: int
    patience: int


def idle_rounds(round_accepts: dict[int, int], end: int, patience: int) -> int:
    """Rounds in a row before round `end` that accepted nothing (an import accepts); counted
    up to `patience` at most."""
    idle = 0
    while idle < patience and round_accepts.get(end - 1 - idle) == 0:
        idle += 1
    return idle


def run_is_over(history: History, limits: Limits) -> str | None:
    """Why the run ends before round `history.next_round`, judged on committed rounds alone:
    the quota is met, or the last `patience` rounds accepted nothing."""
    if history.accepted >= limits.num_instructions:
        return "quota"
    if idle_rounds(history.round_accepts, history.next_round, limits.patience) >= limits.patience:
        return "patience"
    return None
