"""What is in flight and what is sent next (in which order answers become data: rounds.py).

Requests flow continuously: whenever the backend has room (its `window`), the scheduler sends
the next ready request, taking the later steps first -- a candidate instruction's instance
request, then its classification request, then the next instruction prompt. Instructions in
flight stay bounded that way: at most `sample_lag` instruction prompts run ahead of the filter,
and each candidate leaves the pipeline after two more requests, which go first.

Execution runs ahead, commits stay in order. The filter takes prompts in order, so one slow
answer would hold back every later one; instead each answer is parsed as it arrives, and every
instruction in it that is not already too similar to the pool (`RoundCommitter.arrived`: the
pool only grows, so those are rejected for sure) becomes a `Candidate` whose classification and
instance requests go at once. When the filter reaches it, a rejected candidate's requests are
dropped (cancelled if in flight); an accepted one keeps what they answered.

Nothing about the data depends on when answers arrive:
- instruction prompt p (global index: round * batch_size + i) is filtered only after every
  prompt before it was (a reorder buffer); its in-context examples come from the pool as
  filtered through prompt p - sample_lag, so it waits until the filter got there;
- every request carries a seed derived from its prompt index or candidate key, never from
  what else is in flight, and a candidate's requests ask the same whether it is decided yet;
- rounds are committed to the run log strictly in order, each once all of its prompts are
  filtered and its accepted instructions have their instances, and the run ends at the first
  round that meets the quota or spends the patience, whatever else is in flight then.
So the same seed gives the same data at 1 or 256 requests in flight, and a resume that starts
at the first uncommitted round makes the same decisions again from the log. What may depend on
timing is only what is sent and thrown away: speculative requests of rejected candidates, and
rounds admitted (`_admit`) beyond the one that meets the quota. (So may the round markers'
request counts: they count what was answered while it could still become data.)
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque

from self_instruct.backends.base import Backend, Completion
from self_instruct.generation import steps
from self_instruct.generation.jobs import (
    CLASSIFICATION_STEP,
    FOLLOW_UPS,
    INSTANCES_STEP,
    INSTRUCTIONS_STEP,
    Job,
    RequestsFailedError,
)
from self_instruct.generation.progress import RunProgress
from self_instruct.generation.rounds import Commit, RoundCommitter, RoundState


class Scheduler:
    """Drives one run's requests on `backend`; `next_commits` hands back the rounds `committer`
    commits."""

    def __init__(
        self, committer: RoundCommitter, backend: Backend, progress: RunProgress | None = None
    ) -> None:
        self.committer, self.backend, self.progress = committer, backend, progress
        self.limits = committer.limits
        self.next_prompt = self.end_prompt = self.committer.start
        self._queues: dict[str, deque[Job]] = {step: deque() for step in FOLLOW_UPS}
        self._tasks: dict[asyncio.Task, list[Job]] = {}
        self._done: deque[asyncio.Task] = deque()  # finished tasks, in the order they finished
        self._wake = asyncio.Event()  # set when a task finishes
        self._in_flight = 0
        self._failed_round: int | None = None
        self._dead_seen = 0  # candidates the filter had rejected at the last look for doomed tasks

    @property
    def stopped(self) -> str | None:
        """Why the run ended ("quota", "patience"), once it has."""
        return self.committer.stopped

    async def next_commits(self) -> list[Commit] | None:
        """Run until rounds commit: (round, accepted records, rejections by reason) each;
        `None` once the run is over. Tasks in flight wait on the loop between calls."""
        while True:
            if not self.stopped:
                self._dispatch()
            if self.committer.committed:
                committed, self.committer.committed = self.committer.committed, []
                return committed
            if self.stopped:  # what is still in flight is beyond the end of the run
                self.cancel()
                return None
            if not self._tasks:
                if self._failed_round is not None:
                    state = self.committer.rounds[self._failed_round]
                    raise RequestsFailedError(self._failed_round, state.failed, state.sent)
                return None
            if not self._done:  # one wake-up per finished task, not a wait over all of them
                self._wake.clear()
                await self._wake.wait()
            while self._done:  # any order: results land in buffers keyed by prompt or candidate
                task = self._done.popleft()
                if (jobs := self._tasks.pop(task, None)) is None:
                    continue  # dropped by `cancel`
                self._in_flight -= len(jobs)
                answers = [None] * len(jobs) if task.cancelled() else task.result()
                for job, answer in zip(jobs, answers, strict=True):
                    self._finished(job, answer)
            self.committer.advance()
            self._drop_doomed()

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
            task.add_done_callback(self._task_done)
            self._tasks[task] = jobs
            self._in_flight += len(jobs)
            for job in jobs:
                self.committer.rounds[job.round].sent += 1
            if self.progress is not None:
                self.progress.sent(jobs[0].step, len(jobs))

    def _next_jobs(self) -> list[Job]:
        if self.backend.batched:
            return self._next_group()
        for step in FOLLOW_UPS:
            if queue := self._head(step):
                return [queue.popleft()]
        return [job] if (job := self._next_instruction()) is not None else []

    def _head(self, step: str) -> deque[Job]:
        """`step`'s queue, its first job one that is still wanted."""
        queue = self._queues[step]
        while queue and not self._wanted(queue[0]):
            queue.popleft()  # a rejected candidate's, or of a round that can no longer be logged
        return queue

    def _next_group(self) -> list[Job]:
        """An in-process batch: one round's jobs of one step, all of them (instruction prompts:
        as many of the round as the lag lets go; all, unless it is under `batch_size` - 1). A
        batch's makeup then depends on positions alone, as its numerics and sampling (one seed)
        do: one call at a time, so every prompt sent before is filtered when it is made up."""
        for step in FOLLOW_UPS:
            queue = self._head(step)
            if queue and self._group_ready(step, round_ := queue[0].round):
                # One schema a batch (--structured: the two kinds of task differ in instances).
                schema = queue[0].params.schema
                group = [j for j in queue if j.round == round_ and j.params.schema == schema]
                for job in group:
                    queue.remove(job)
                return [job for job in group if self._wanted(job)]
        jobs: list[Job] = []
        while not jobs or self.next_prompt % self.limits.batch_size:  # up to the round's end
            if (job := self._next_instruction()) is None:
                break
            jobs.append(job)
        return jobs

    def _group_ready(self, step: str, round_: int) -> bool:
        state = self.committer.rounds[round_]
        if state.filtered < self.limits.batch_size:
            return False
        return step == CLASSIFICATION_STEP or state.classified == len(state.accepted)

    def _wanted(self, job: Job) -> bool:
        """Whether `job`'s answer can still become data."""
        if not self._live(job.round):
            return False
        if job.step == INSTRUCTIONS_STEP:
            return True
        return not (job.subject if job.step == CLASSIFICATION_STEP else job.subject[0]).dead

    def _sendable(self, p: int) -> bool:
        """Whether prompt `p` may go: its round admitted and its pool filtered."""
        size = self.limits.batch_size
        if p >= self.end_prompt and not (p < self.end_prompt + size and self._admit(p // size)):
            return False
        return p - self.limits.sample_lag <= self.committer.prefix and self._live(p // size)

    def _next_instruction(self) -> Job | None:
        """The next instruction prompt, if it may go (see `_sendable`)."""
        p = self.next_prompt
        if not self._sendable(p):
            return None
        committer = self.committer
        visible = bisect.bisect_left(committer.accepted_prompts, p - self.limits.sample_lag)
        self.next_prompt += 1
        machine = committer.summary.imported + visible  # the pool's instructions it may show
        return steps.instruction_job(
            committer.inputs, committer.index.texts, machine, p, p // self.limits.batch_size
        )

    def _admit(self, round_: int) -> bool:
        """Whether round `round_`'s prompts may go now. Not if the filtered prefix shows the run
        ends before it (quota met, patience spent), nor while the prompts sent before it are
        expected to meet the quota with a window of requests to spare. Which rounds are sent
        decides no data (every round up to the last one needed is sent: once the filter reaches
        it, nothing is left to expect), only how few prompts go beyond the quota."""
        size, quota = self.limits.batch_size, self.limits.num_instructions
        committer = self.committer
        first = round_ * size
        if self.stopped or first - self.limits.sample_lag > committer.prefix:
            return False
        if len(committer.accepted_prompts) >= quota:
            return False
        if committer.idle_rounds(committer.prefix // size) >= self.limits.patience:  # filtered
            return False
        expected, rate = committer.expected(first)
        spare = max(size, self.backend.window / (1 + 2 * rate))  # a prompt: 1 + 2 x rate requests
        if expected - rate * spare >= quota:
            return False
        committer.rounds[round_] = RoundState()
        self.end_prompt += size
        return True

    def _task_done(self, task: asyncio.Task) -> None:
        self._done.append(task)
        self._wake.set()

    def _drop_doomed(self) -> None:
        """Cancel requests that can never become data: of rejected candidates, and of rounds at
        or after one that failed (looked for only when one was rejected, or failed). Their slots
        go to the next requests."""
        if self.committer.dead == self._dead_seen and self._failed_round is None:
            return
        self._dead_seen = self.committer.dead
        for task, jobs in self._tasks.items():
            if not any(self._wanted(job) for job in jobs):
                task.cancel()

    def _live(self, round_: int) -> bool:
        return self._failed_round is None or round_ < self._failed_round

    # -- receiving -------------------------------------------------------------------------

    def _finished(self, job: Job, answer: Completion | None) -> None:
        if self.progress is not None:
            self.progress.finished(job.step)
        if not self._wanted(job):
            return
        state = self.committer.rounds[job.round]
        if answer is None:  # its retries spent: this round and the later ones are not logged
            state.failed += 1
            self._failed_round = job.round
            return
        state.usage.add([answer], 0.0)
        if job.step == INSTRUCTIONS_STEP:
            candidates = self.committer.arrived(job, answer)
            jobs = [steps.classification_job(self.committer.inputs, c) for c in candidates]
            self._queues[CLASSIFICATION_STEP].extend(jobs)
        elif job.step == CLASSIFICATION_STEP:
            state.classified += 1
            follow_up = steps.instance_job(self.committer.inputs, job.subject, answer)
            self._queues[INSTANCES_STEP].append(follow_up)
        else:
            self.committer.got_instances(job.subject[0], job, answer)
