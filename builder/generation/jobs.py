"""What the scheduler, the round committer and the steps hand each other; the rules that end a run.

A `Job` is one request with what its step needs back (generation/steps.py builds them); a
`Candidate` is an instruction on its way from its prompt's answer to its instances. `run_is_over`
is the one rule, judged on committed rounds alone (the log's `History`), that ends a run: the
quota met or the patience spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from self_instruct.backends.base import Completion, Prompt, SamplingParams
from self_instruct.rouge.index import FilterDecision
from self_instruct.runlog import History
from self_instruct.runlog.records import Instruction, Record

# Dispatch priority: later steps first, so accepted instructions leave before new ones come in.
INSTANCES_STEP, CLASSIFICATION_STEP, INSTRUCTIONS_STEP = (
    "instances",
    "classification",
    "instruction lists",
)
FOLLOW_UPS = (INSTANCES_STEP, CLASSIFICATION_STEP)


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
    """One request and what its step needs back with its answer (`subject`)."""

    step: str
    round: int
    prompt: Prompt  # text, or messages for a chat model
    params: SamplingParams
    subject: Any


@dataclass
class ScreenedAnswer:
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
    dropped; accepted, it gets its id and the filter's `decision`, and once its instances are
    read too, its whole `record` (generation/rounds.py).
    """

    round: int
    key: tuple[int, int]
    text: str
    examples: list[str]  # the in-context examples its prompt showed
    decision: tuple[str, FilterDecision] | None = None  # its id and the filter's, once kept
    instances: tuple[Job, Completion] | None = None
    record: Instruction | None = None
    dead: bool = False


@dataclass
class SchedulerOptions:
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


def run_is_over(history: History, limits: SchedulerOptions) -> str | None:
    """Why the run ends before round `history.next_round`, judged on committed rounds alone:
    the quota is met, or the last `patience` rounds accepted nothing."""
    if history.accepted >= limits.num_instructions:
        return "quota"
    if idle_rounds(history.round_accepts, history.next_round, limits.patience) >= limits.patience:
        return "patience"
    return None
