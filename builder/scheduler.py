"""What is in flight, what is sent next, and in which order results become data.

Requests flow continuously: whenever the backend has room (its `window`), the scheduler sends
the next ready request, taking the later steps first -- an accepted instruction's instance
request, then its classification request, then the next instruction prompt. Instructions in
flight stay bounded that way: at most `sample_lag` instruction prompts run ahead of the filter,
and each accepted instruction leaves the pipeline after two more requests, which go first.

Nothing about the data depends on when answers arrive:
- instruction prompt p (global index: round * batch_size + i) is filtered only after every
  prompt before it was (a reorder buffer); its in-context examples come from the pool as
  filtered through prompt p - sample_lag, so it waits until the filter got there;
- every request carries a seed derived from its prompt index or instruction id, never from
  what else is in flight;
- a round is admitted (its prompts will be sent) by a rule that reads only the filtered prefix
  at its first prompt - sample_lag: the quota is not yet met and the patience not yet spent;
- rounds are committed to the run log strictly in order, each once all of its prompts are
  filtered and its accepted instructions have their instances, and the run ends at the first
  round that meets the quota or spends the patience, whatever else is in flight then.
So the same seed gives the same log at 1 or 256 requests in flight, and a resume that starts
at the first uncommitted round makes the same decisions again from the log.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter, deque
from dataclasses import dataclass, field

from .backends import Backend, Completion
from .jobs import (
    CLASSIFICATION,
    FOLLOW_UPS,
    INSTANCES,
    INSTRUCTIONS,
    History,
    Job,
    Limits,
    RequestsFailedError,
    Steps,
    idle_rounds,
    run_is_over,
)
from .progress import RunProgress
from .runlog import Record


@dataclass
class _Round:
    filtered: int = 0  # prompts of the round filtered so far
    pending: int = 0  # accepted instructions still waiting for their instances
    classified: int = 0
    records: list[Record] = field(default_factory=list)
    accepted: list[Record] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    usage: Counter[str] = field(default_factory=Counter)


class Scheduler:
    """Drives one run's requests on `backend`; `next_commits` hands back rounds as they commit."""

    def __init__(
        self,
        steps: Steps,
        backend: Backend,
        limits: Limits,
        history: History,
        progress: RunProgress | None = None,
    ) -> None:
        self.steps, self.backend, self.limits, self.progress = steps, backend, limits, progress
        self.accepted_prompts = list(history.accepted_prompts)
        self.round_accepts = dict(history.round_accepts)
        self.accepted = history.accepted
        start = history.next_round * limits.batch_size
        self.next_prompt = self.end_prompt = self.prefix = start
        self.next_commit = history.next_round
        self.stopped: str | None = run_is_over(history, limits)
        self._rounds: dict[int, _Round] = {}
        self._answers: dict[int, tuple[Job, Completion]] = {}  # the reorder buffer
        self._queues: dict[str, deque[Job]] = {step: deque() for step in FOLLOW_UPS}
        self._tasks: dict[asyncio.Task, list[Job]] = {}
        self._in_flight = 0
        self._failed_round: int | None = None
        self._committed: list[tuple[int, list[Record], Counter[str]]] = []
        self._seconds_at_commit = backend.usage.seconds

    async def next_commits(self) -> list[tuple[int, list[Record], Counter[str]]] | None:
        """Run until rounds commit: (round, accepted records, rejections by reason) each;
        `None` once the run is over. Tasks in flight wait on the loop between calls."""
        while True:
            if not self.stopped:
                self._dispatch()
            if self._committed:
                committed, self._committed = self._committed, []
                return committed
            if self.stopped:  # what is still in flight is beyond the end of the run
                self.cancel()
                return None
            if not self._tasks:
                if self._failed_round is not None:
                    state = self._rounds[self._failed_round]
                    raise RequestsFailedError(self._failed_round, state.failed, state.sent)
                return None
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:  # any order: results land in buffers keyed by prompt or id
                jobs = self._tasks.pop(task)
                self._in_flight -= len(jobs)
                answers = [None] * len(jobs) if task.cancelled() else task.result()
                for job, answer in zip(jobs, answers, strict=True):
                    self._finished(job, answer)
            self._drop_doomed()
            self._advance()

    def cancel(self) -> None:
        """Drop whatever is in flight (the run ended, failed or was interrupted): nothing of it
        is logged. Not awaited: after a Ctrl-C the loop cannot run again; the tasks end when it
        next runs (the backend's `close`), releasing their slots."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    # -- sending ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Fill the window. An in-process backend gets one call of same-step prompts at a
        time (its batch); a server backend one call per request, each freeing its own slot."""
        window, batched = self.backend.window, self.backend.batched
        while self._in_flight < window and not (batched and self._in_flight):
            jobs = self._next_jobs()
            if not jobs:
                return
            prompts = [job.prompt for job in jobs]
            # A batch's jobs differ only in their seeds; it samples with its first one's.
            task = asyncio.ensure_future(self.backend.agenerate(prompts, jobs[0].params))
            self._tasks[task] = jobs
            self._in_flight += len(jobs)
            for job in jobs:
                self._rounds[job.round].sent += 1
            if self.progress is not None:
                self.progress.sent(jobs[0].step, len(jobs))

    def _next_jobs(self) -> list[Job]:
        if self.backend.batched:
            return self._next_group()
        for step in FOLLOW_UPS:
            queue = self._queues[step]
            while queue and not self._live(queue[0].round):
                queue.popleft()  # of a round that can no longer be logged
            if queue:
                return [queue.popleft()]
        return [job] if (job := self._next_instruction()) is not None else []

    def _next_group(self) -> list[Job]:
        """An in-process batch: one round's jobs of one step, all of them (instruction prompts:
        as many of the round as the lag lets go; all, unless it is under `batch_size` - 1). A
        batch's makeup then depends on positions alone, as its numerics and sampling (one seed)
        do: one call at a time, so every prompt sent before is filtered when it is made up."""
        for step in FOLLOW_UPS:
            queue = self._queues[step]
            if queue and self._group_ready(step, round_ := queue[0].round):
                # One schema a batch (--structured: the two kinds of task differ in instances).
                schema = queue[0].params.schema
                jobs = [j for j in queue if j.round == round_ and j.params.schema == schema]
                for job in jobs:
                    queue.remove(job)
                return jobs
        jobs: list[Job] = []
        while not jobs or self.next_prompt % self.limits.batch_size:  # up to the round's end
            if (job := self._next_instruction()) is None:
                break
            jobs.append(job)
        return jobs

    def _group_ready(self, step: str, round_: int) -> bool:
        state = self._rounds[round_]
        if state.filtered < self.limits.batch_size:
            return False
        return step == CLASSIFICATION or state.classified == len(state.accepted)

    def _sendable(self, p: int) -> bool:
        """Whether prompt `p` may go: its round admitted and its pool filtered."""
        size = self.limits.batch_size
        if p >= self.end_prompt and not (p < self.end_prompt + size and self._admit(p // size)):
            return False
        return p - self.limits.sample_lag <= self.prefix and self._live(p // size)

    def _next_instruction(self) -> Job | None:
        """The next instruction prompt, if it may go (see `_sendable`)."""
        p = self.next_prompt
        if not self._sendable(p):
            return None
        visible = bisect.bisect_left(self.accepted_prompts, p - self.limits.sample_lag)
        self.next_prompt += 1
        return self.steps.instruction_job(p, p // self.limits.batch_size, visible)

    def _admit(self, round_: int) -> bool:
        """Whether round `round_` is sent, read off the filtered prefix at its first prompt
        minus the lag (so never of timing): the quota not met, the patience not spent."""
        first = round_ * self.limits.batch_size - self.limits.sample_lag
        if self.stopped or first > self.prefix:
            return False
        if bisect.bisect_left(self.accepted_prompts, first) >= self.limits.num_instructions:
            return False
        if self._idle_rounds(first // self.limits.batch_size) >= self.limits.patience:
            return False
        self._rounds[round_] = _Round()
        self.end_prompt += self.limits.batch_size
        return True

    def _idle_rounds(self, end: int) -> int:
        return idle_rounds(self.round_accepts, end, self.limits.patience)

    def _drop_doomed(self) -> None:
        """Cancel requests of rounds at or after one that failed: they can never be logged."""
        for task, jobs in self._tasks.items():
            if not any(self._live(job.round) for job in jobs):
                task.cancel()

    def _live(self, round_: int) -> bool:
        return self._failed_round is None or round_ < self._failed_round

    # -- receiving -------------------------------------------------------------------------

    def _finished(self, job: Job, answer: Completion | None) -> None:
        if self.progress is not None:
            self.progress.finished(job.step)
        if not self._live(job.round):
            return
        state = self._rounds[job.round]
        if answer is None:  # its retries spent: this round and the later ones are not logged
            state.failed += 1
            self._failed_round = job.round
            return
        state.usage.update(
            requests=1,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
        )
        if job.step == INSTRUCTIONS:
            self._answers[job.subject[0]] = (job, answer)
        elif job.step == CLASSIFICATION:
            state.classified += 1
            self._queues[INSTANCES].append(self.steps.instance_job(job.subject, answer))
        else:
            self.steps.add_instances(job, answer)
            state.pending -= 1

    def _advance(self) -> None:
        """Filter the answers that complete the prefix, in prompt order, then commit."""
        ready: list[tuple[Job, Completion]] = []
        while self.prefix + len(ready) in self._answers:
            ready.append(self._answers.pop(self.prefix + len(ready)))
        if ready:
            for (job, _), records in zip(ready, self.steps.filter_prompts(ready), strict=True):
                self._filtered(job, records)
        self._commit()

    def _filtered(self, job: Job, records: list[Record]) -> None:
        state = self._rounds[job.round]
        accepted = [r for r in records if r["type"] == "instruction"]
        state.records += [r for r in records if r["type"] != "instruction"]
        state.accepted += accepted
        state.filtered += 1
        state.pending += len(accepted)
        self.accepted_prompts += [self.prefix] * len(accepted)
        self._queues[CLASSIFICATION].extend(map(self.steps.classification_job, accepted))
        self.prefix += 1
        if state.filtered == self.limits.batch_size:
            self.round_accepts[job.round] = len(state.accepted)

    def _commit(self) -> None:
        """Log every round that is complete and next in order; stop at quota or patience."""
        while not self.stopped and (state := self._rounds.get(self.next_commit)) is not None:
            if state.filtered < self.limits.batch_size or state.pending:
                return
            round_ = self.next_commit
            rejected = Counter(r["reason"] for r in state.records)
            seconds = self.backend.usage.seconds  # the backend's busy time since the last commit
            marker = {
                "round": round_,
                "accepted": len(state.accepted),
                "rejected": len(state.records),
                "requests": state.usage["requests"],
                "failed_requests": 0,  # a round with a failed request is never logged
                "prompt_tokens": state.usage["prompt_tokens"],
                "completion_tokens": state.usage["completion_tokens"],
                "seconds": seconds - self._seconds_at_commit,
            }
            self.steps.commit(round_, state.records + state.accepted, marker)
            self._seconds_at_commit = seconds
            self.accepted += len(state.accepted)
            self._committed.append((round_, state.accepted, rejected))
            del self._rounds[round_]
            self.next_commit += 1
            history = History(self.next_commit, [], self.round_accepts, self.accepted)
            self.stopped = run_is_over(history, self.limits)
