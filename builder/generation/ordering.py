"""How answers become data: in prompt order, whatever order they arrive in.

An instruction prompt's answer is read (`Steps.parse`) as soon as it arrives, and each of its
instructions not already too similar to the pool becomes a `Candidate` (the scheduler sends its
follow-ups at once). The filter itself takes the answers in prompt order, from a reorder buffer:
prompt p only after every prompt before it. Rounds are committed to the run log strictly in
order, each once all of its prompts are filtered and its accepted instructions have their
instances; the run ends at the first round that meets the quota or spends the patience.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from self_instruct.backends.base import Completion, Usage
from self_instruct.generation.jobs import (
    Candidate,
    Job,
    Limits,
    Parsed,
    Steps,
    idle_rounds,
    run_is_over,
)
from self_instruct.runlog.records import Record
from self_instruct.runlog.replay import History
from self_instruct.schemas import MAX_NEW_INSTRUCTIONS

Commit = tuple[int, list[Record], Counter[str]]  # round, accepted records, rejections by reason


@dataclass
class RoundState:
    """A round between its admission and its commit."""

    filtered: int = 0  # prompts of the round filtered so far
    pending: int = 0  # accepted instructions still waiting for their instances
    classified: int = 0  # classification answers of live candidates
    records: list[Record] = field(default_factory=list)
    accepted: list[Record] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)  # of its answered requests


class Ordering:
    """The reorder buffer, the candidates, the open rounds and their commits."""

    def __init__(self, steps: Steps, limits: Limits, history: History, usage: Usage) -> None:
        self.steps, self.limits, self._usage = steps, limits, usage
        self.accepted_prompts = list(history.accepted_prompts)  # the filtered prefix's, in order
        self.round_accepts = dict(history.round_accepts)
        self.accepted = history.accepted  # committed
        self.prefix = self.start = history.next_round * limits.batch_size
        self._accepted_at_start = len(self.accepted_prompts)
        self.next_commit = history.next_round
        self.stopped: str | None = run_is_over(history, limits)
        self.rounds: dict[int, RoundState] = {}
        self.committed: list[Commit] = []
        self._answers: dict[int, tuple[Job, Parsed]] = {}  # the reorder buffer
        self._candidates: dict[int, list[Candidate]] = {}  # by prompt, until it is filtered
        self._seconds_at_commit = usage.seconds
        self.dead = 0  # candidates the filter rejected so far

    def arrived(self, job: Job, answer: Completion) -> list[Candidate]:
        """Read an instruction prompt's answer; its candidates (their requests may go now)."""
        p = job.subject[0]
        parsed = self.steps.parse(job, answer)
        self._answers[p] = (job, parsed)
        rejects = self.steps.pool_rejects(parsed.texts)
        self._candidates[p] = [
            Candidate(job.round, (p, k), text)
            for k, (text, rejected) in enumerate(zip(parsed.texts, rejects, strict=True))
            if not rejected
        ]
        return self._candidates[p]

    def got_instances(self, candidate: Candidate, job: Job, answer: Completion) -> None:
        candidate.instances = (job, answer)
        if candidate.record is not None:
            self._complete(candidate)

    def advance(self) -> None:
        """Filter the answers that complete the prefix, in prompt order, then commit."""
        ready: list[tuple[Job, Parsed]] = []
        while self.prefix + len(ready) in self._answers:
            ready.append(self._answers.pop(self.prefix + len(ready)))
        if ready:
            for (job, _), decided in zip(ready, self.steps.filter_prompts(ready), strict=True):
                self._filtered(job, *decided)
        self._commit()

    def expected(self, end: int) -> tuple[float, float]:
        """Instructions expected from the prompts before `end`, and per prompt: those the filter
        kept, the live candidates of answers it has not reached yet, and for the prompts not
        answered the rate so far (before any answer, the most a prompt can bring)."""
        live = sum(map(len, self._candidates.values()))
        answered = self.prefix - self.start + len(self._candidates)
        kept = len(self.accepted_prompts) - self._accepted_at_start + live
        rate = kept / answered if answered else MAX_NEW_INSTRUCTIONS
        unanswered = end - self.prefix - len(self._candidates)
        return len(self.accepted_prompts) + live + rate * unanswered, rate

    def idle_rounds(self, end: int) -> int:
        return idle_rounds(self.round_accepts, end, self.limits.patience)

    def _complete(self, candidate: Candidate) -> None:
        self.steps.add_instances(candidate.record, *candidate.instances)
        self.rounds[candidate.round].pending -= 1

    def _filtered(self, job: Job, rejected: list[Record], accepted: dict[int, Record]) -> None:
        state = self.rounds[job.round]
        state.records += rejected
        state.filtered += 1
        for candidate in self._candidates.pop(self.prefix):
            if (record := accepted.pop(candidate.key[1], None)) is None:
                candidate.dead = True
                self.dead += 1
                continue
            candidate.record = record
            state.accepted.append(record)
            state.pending += 1
            self.accepted_prompts.append(self.prefix)
            if candidate.instances is not None:
                self._complete(candidate)
        if accepted:  # the pool only grows: what it rejected before, the filter rejects too
            raise RuntimeError(f"prompt {self.prefix}: kept instructions the pool had rejected")
        self.prefix += 1
        if state.filtered == self.limits.batch_size:
            self.round_accepts[job.round] = len(state.accepted)

    def _commit(self) -> None:
        """Log every round that is complete and next in order; stop at quota or patience."""
        while not self.stopped and (state := self.rounds.get(self.next_commit)) is not None:
            if state.filtered < self.limits.batch_size or state.pending:
                return
            round_ = self.next_commit
            seconds = self._usage.seconds  # the backend's busy time since the last commit
            marker = {
                "round": round_,
                "accepted": len(state.accepted),
                "rejected": len(state.records),
                "requests": state.usage.requests,
                "failed_requests": 0,  # a round with a failed request is never logged
                "prompt_tokens": state.usage.prompt_tokens,  # None: a server did not count
                "completion_tokens": state.usage.completion_tokens,
                "seconds": seconds - self._seconds_at_commit,
            }
            self.steps.commit(round_, state.records + state.accepted, marker)
            self._seconds_at_commit = seconds
            self.accepted += len(state.accepted)
            rejected = Counter(r["reason"] for r in state.records)
            self.committed.append((round_, state.accepted, rejected))
            del self.rounds[round_]
            self.next_commit += 1
            history = History(self.next_commit, [], self.round_accepts, self.accepted)
            self.stopped = run_is_over(history, self.limits)
