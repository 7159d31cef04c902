"""How answers become data: filtered in prompt order, committed a round at a time.

An instruction prompt's answer is read (`steps.read_instructions`) as soon as it arrives, and
each of its instructions not already too similar to the pool becomes a `Candidate` (the
scheduler sends its follow-ups at once). The ROUGE-L filter itself takes the answers in prompt
order, from a reorder buffer: prompt p only after every prompt before it, against the pool and
everything accepted before. Rounds are committed to the run log strictly in order, each once
all of its prompts are filtered and its accepted instructions have their instances (each record
made whole then, never completed later), and counted into the run's live summary as a replay of
the log would count them; the run ends at the first round that meets the quota or spends the
patience.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from self_instruct.backends.base import Completion, Usage
from self_instruct.generation import steps
from self_instruct.generation.jobs import (
    Candidate,
    Job,
    SchedulerOptions,
    ScreenedAnswer,
    idle_rounds,
    run_is_over,
)
from self_instruct.generation.steps import StepInputs
from self_instruct.rouge.index import FilterDecision, RougeIndex
from self_instruct.runlog import History, RunLog
from self_instruct.runlog.records import Instruction, Record, instruction, rejection, round_marker
from self_instruct.runlog.summary import RunSummary
from self_instruct.schemas import MAX_NEW_INSTRUCTIONS

TOP_K_SIMILAR = 10
Commit = tuple[int, list[Instruction], Counter[str]]  # round, accepted, rejections by reason


@dataclass
class RoundState:
    """A round between its admission and its commit."""

    filtered: int = 0  # prompts of the round filtered so far
    pending: int = 0  # accepted instructions still waiting for their instances
    classified: int = 0  # classification answers of live candidates
    rejected: list[Record] = field(default_factory=list)
    accepted: list[Candidate] = field(default_factory=list)  # in the order the filter kept them
    sent: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)  # of its answered requests


class RoundCommitter:
    """The reorder buffer, the filter, the candidates, the open rounds and their commits: into
    the ROUGE-L pool `index`, the run `log` and its live `summary`."""

    def __init__(
        self,
        inputs: StepInputs,
        index: RougeIndex,
        log: RunLog,
        summary: RunSummary,
        limits: SchedulerOptions,
        history: History,
        usage: Usage,
    ) -> None:
        self.inputs, self.index, self.log, self.summary = inputs, index, log, summary
        self.limits, self._usage = limits, usage
        self.accepted_prompts = list(history.accepted_prompts)  # the filtered prefix's, in order
        self.round_accepts = dict(history.round_accepts)
        self.accepted = history.accepted  # committed
        self.prefix = self.start = history.next_round * limits.batch_size
        self._accepted_at_start = len(self.accepted_prompts)
        self.next_commit = history.next_round
        self.stopped: str | None = run_is_over(history, limits)
        self.rounds: dict[int, RoundState] = {}
        self.committed: list[Commit] = []
        self._answers: dict[int, tuple[Job, ScreenedAnswer]] = {}  # the reorder buffer
        self._candidates: dict[int, list[Candidate]] = {}  # by prompt, until it is filtered
        self._seconds_at_commit = usage.seconds
        self.dead = 0  # candidates the filter rejected so far

    def arrived(self, job: Job, answer: Completion) -> list[Candidate]:
        """Read an instruction prompt's answer; its candidates (their requests may go now):
        the texts not already too similar to the pool, rejected whatever joins it before their
        turn (the pool only grows), so no request is sent for them."""
        p, examples = job.subject
        parsed = steps.read_instructions(self.inputs, job, answer)
        self._answers[p] = (job, parsed)
        rejects = self.index.pool_rejects(parsed.texts, self.inputs.config.rouge_threshold)
        self._candidates[p] = [
            Candidate(job.round, (p, k), text, examples)
            for k, (text, rejected) in enumerate(zip(parsed.texts, rejects, strict=True))
            if not rejected
        ]
        return self._candidates[p]

    def got_instances(self, candidate: Candidate, job: Job, answer: Completion) -> None:
        candidate.instances = (job, answer)
        if candidate.decision is not None:
            self._complete(candidate)

    def advance(self) -> None:
        """Filter the answers that complete the prefix, in prompt order, then commit."""
        ready: list[tuple[Job, ScreenedAnswer]] = []
        while self.prefix + len(ready) in self._answers:
            ready.append(self._answers.pop(self.prefix + len(ready)))
        if ready:
            self._filter(ready)
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

    def _filter(self, ready: list[tuple[Job, ScreenedAnswer]]) -> None:
        """The greedy ROUGE-L filter against the pool and everything accepted before, in
        prompt order (one call for all of them: the same decisions as one call per prompt)."""
        cfg = self.inputs.config
        texts = [text for _, parsed in ready for text in parsed.texts]
        decisions = iter(
            self.index.filter(
                texts, cfg.rouge_threshold, TOP_K_SIMILAR, provenance_pool=cfg.provenance_pool
            )
        )
        for job, parsed in ready:
            state = self.rounds[job.round]
            state.rejected += parsed.rejections
            candidates = {c.key[1]: c for c in self._candidates.pop(self.prefix)}
            for k, text in enumerate(parsed.texts):
                decision, candidate = next(decisions), candidates.get(k)
                if decision.accepted and candidate is not None:
                    self._keep(candidate, state, decision)
                elif decision.accepted:  # the pool only grows: what it rejected, the filter too
                    raise RuntimeError(f"prompt {self.prefix}: kept what the pool had rejected")
                else:
                    state.rejected.append(rejection(job.round, text, "too_similar", decision))
                    if candidate is not None:
                        candidate.dead = True
                        self.dead += 1
            state.filtered += 1
            self.prefix += 1
            if state.filtered == self.limits.batch_size:
                self.round_accepts[job.round] = len(state.accepted)

    def _keep(self, candidate: Candidate, state: RoundState, decision: FilterDecision) -> None:
        """An accepted candidate gets its id, its number among its round's accepted ones."""
        candidate.decision = (f"r{candidate.round:05d}-{len(state.accepted):02d}", decision)
        state.accepted.append(candidate)
        state.pending += 1
        self.accepted_prompts.append(self.prefix)
        if candidate.instances is not None:
            self._complete(candidate)

    def _complete(self, candidate: Candidate) -> None:
        """The candidate's record, whole: what the filter decided, its instances read."""
        (id_, decision), (job, answer) = candidate.decision, candidate.instances
        candidate.record = instruction(
            id_=id_,
            round_=candidate.round,
            prompt=candidate.key[0],
            text=candidate.text,
            decision=decision,
            examples=candidate.examples,
            instances=steps.read_instances(self.inputs, id_, job, answer),
        )
        self.rounds[candidate.round].pending -= 1

    def _commit(self) -> None:
        """Log every round that is complete and next in order (one durable write of the whole
        round), count it; stop at quota or patience."""
        while not self.stopped and (state := self.rounds.get(self.next_commit)) is not None:
            if state.filtered < self.limits.batch_size or state.pending:
                return
            round_ = self.next_commit
            accepted = [candidate.record for candidate in state.accepted]
            seconds = self._usage.seconds  # the backend's busy time since the last commit
            marker = round_marker(
                {
                    "round": round_,
                    "accepted": len(accepted),
                    "rejected": len(state.rejected),
                    "requests": state.usage.requests,
                    "failed_requests": 0,  # a round with a failed request is never logged
                    "prompt_tokens": state.usage.prompt_tokens,  # None: a server did not count
                    "completion_tokens": state.usage.completion_tokens,
                    "seconds": seconds - self._seconds_at_commit,
                }
            )
            records = [*state.rejected, *accepted]
            self.log.append_round(records, marker)
            for record in [*records, marker]:
                self.summary.add(record)
            self._seconds_at_commit = seconds
            self.accepted += len(accepted)
            rejected = Counter(r["reason"] for r in state.rejected)
            self.committed.append((round_, accepted, rejected))
            del self.rounds[round_]
            self.next_commit += 1
            history = History(self.next_commit, [], self.round_accepts, self.accepted)
            self.stopped = run_is_over(history, self.limits)
