"""The bootstrap loop (paper section 2): sample -> generate -> filter -> classify -> instances.

A `Pipeline` is one resumable run: it replays its log, then generates. One round of generation
reads down three modules: generation/scheduler.py sends each request when it may go,
generation/steps.py builds the requests and reads the answers (plain functions),
generation/rounds.py filters the answers in prompt order and commits each round whole to the
run log, counted into the run's summary.

A resumed run repeats exactly the prompts an uninterrupted one would have sent (every random
choice is seeded by a position, see steps.py). For the same reason a round where a request
failed for good (its retries spent) is never logged: the run stops, and the resume sends the
whole round again, as if it had never been tried.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from self_instruct.backends import load_backend, resolve_defaults
from self_instruct.backends.base import Backend
from self_instruct.config import RESUMABLE_OPTIONS, PipelineConfig
from self_instruct.generation.jobs import RequestsFailedError, SchedulerOptions, run_is_over
from self_instruct.generation.progress import RunProgress
from self_instruct.generation.rounds import RoundCommitter
from self_instruct.generation.scheduler import Scheduler
from self_instruct.generation.seed_lengths import check_seed_lengths
from self_instruct.generation.steps import step_inputs
from self_instruct.prompting.modes import prompting_mode
from self_instruct.prompting.prompts import PromptTemplates, load_templates
from self_instruct.prompting.seeds import SeedTask, load_seeds, prompting_seeds, seeds_fingerprint
from self_instruct.rouge.index import RougeIndex
from self_instruct.runlog import History, RunLog
from self_instruct.runlog.previous import load_previous
from self_instruct.runlog.records import Record, round_marker
from self_instruct.runlog.replay import Replay
from self_instruct.runlog.summary import RunSummary
from self_instruct.schemas import check_structured_installed

__all__ = ["Pipeline", "RequestsFailedError", "run_identity"]


def run_identity(
    config: PipelineConfig, seeds: Sequence[SeedTask], templates: PromptTemplates
) -> dict[str, Any]:
    """What decides the data of a run; stored with the log and compared on resume."""
    options = {k: v for k, v in asdict(config).items() if k not in RESUMABLE_OPTIONS}
    return {
        **options,
        "prompting_mode": config.prompting_mode,
        "seeds_sha256": seeds_fingerprint(seeds),
        "prompts_sha256": templates.fingerprint(),
    }


logger = logging.getLogger(__name__)


class Pipeline:
    """A resumable Self-Instruct run in `run_dir`; iterate it to get accepted instructions."""

    def __init__(
        self,
        config: PipelineConfig,
        run_dir: str | Path,
        backend: Backend | None = None,
        progress: bool = True,
    ) -> None:
        config.validate()
        self.config = config = resolve_defaults(config)
        if config.structured:
            check_structured_installed(config.backend)
        self.seed_tasks = load_seeds(config.seeds)  # all of them go into the `sft` rows
        self.seeds = prompting_seeds(self.seed_tasks, config.classification_only)
        if not self.seeds:
            raise ValueError(f"{config.seeds}: no seed tasks to prompt with")
        self.templates = load_templates(config.prompt_templates)
        self.mode = prompting_mode(config, self.templates)
        self.log = RunLog(run_dir, run_identity(config, self.seeds, self.templates))
        logger.info("Self-Instruct run directory: %s", self.log.dir)
        self._backend = backend
        self._owns_backend = backend is None  # then loaded here, and closed here
        self.progress = progress
        self.index = RougeIndex()  # the pool: seeds, imports, new ones
        # The run's counts (the card's funnel and usage too): filled by the pass that replays
        # the log, then by each commit, so nothing reads the log again for them.
        self.summary = RunSummary(config.num_instructions)
        self.inputs = step_inputs(config, self.mode, [s.instruction for s in self.seeds])

    @property
    def backend(self) -> Backend:
        """Loaded on first use: a finished run replays its log without loading any model."""
        if self._backend is None:
            self._backend = load_backend(self.config)
        return self._backend

    def __iter__(self) -> Iterator[Record]:
        """The imported records and the first `num_instructions` accepted ones: those in the
        log (one pass, see runlog/replay.py), then new ones.

        Rounds are logged whole, whatever the quota, so that a run extended later with a larger
        `num_instructions` is the same as one that asked for more from the start.
        """
        records = self.log.open()
        try:
            replay = Replay(self.summary)
            yield from replay.read(records)
            if self.config.resume_from and not self.summary.rounds:
                yield from replay.read(self._import(load_previous(self.config.resume_from)))
            self.index.add(self.inputs.seed_texts)
            self.index.add(replay.texts)
            room = self.config.num_instructions - self.summary.kept
            yield from itertools.islice(self._generate(replay.history()), room)
        finally:
            self.log.close()
            if self._owns_backend and self._backend is not None:
                self._backend.close()  # ends the requests a stopped run left in flight
                self._backend = None

    def _import(self, previous: list[Record]) -> list[Record]:
        """Log an earlier version's instructions as this run's first round (see runlog/previous.py);
        that round's records as logged, to replay without reading them back."""
        last_round = max((r["round"] for r in previous), default=0)
        marker = round_marker(
            {"round": last_round, "accepted": 0, "rejected": 0, "imported": len(previous)}
        )
        self.log.append_round(previous, marker)
        return [*previous, marker]

    def _generate(self, history: History) -> Iterator[Record]:
        cfg = self.config
        limits = SchedulerOptions(
            cfg.batch_size, cfg.sample_lag, cfg.num_instructions, cfg.patience
        )
        if run_is_over(history, limits):  # a finished run replays without a backend
            return
        check_seed_lengths(self.seeds, self.backend, cfg)  # before any request: may never fit
        with RunProgress(cfg.num_instructions, self.summary.accepted, self.progress) as progress:
            progress.rejected.update(self.summary.rejected)
            committer = RoundCommitter(
                self.inputs, self.index, self.log, self.summary, limits, history, self.backend.usage
            )
            scheduler = Scheduler(committer, self.backend, progress)
            try:
                while (commits := self.backend.run(scheduler.next_commits())) is not None:
                    for round_, accepted, rejected in commits:
                        progress.round_done(round_, len(accepted), rejected)
                        yield from accepted
            finally:
                scheduler.cancel()
        if scheduler.stopped == "patience":
            tqdm.write(
                f"Stopped: {cfg.patience} rounds in a row accepted nothing "
                f"({self.summary.accepted}/{cfg.num_instructions} instructions)."
            )
