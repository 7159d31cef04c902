"""The bootstrap loop (paper section 2): sample -> generate -> filter -> classify -> instances.

This module says what each step does: which in-context examples an instruction prompt shows,
how an answer is split and filtered (heuristics, then ROUGE-L against the pool), how accepted
instructions are classified and get their instances, and what the run log keeps. When each
request is sent, and in which order answers become data, is generation/scheduler.py's.

Every random choice comes from a generator seeded with the run seed and a position -- the
prompt's global index p, or the instruction's id -- never with what else is in flight, so a
resumed run repeats exactly the prompts an uninterrupted one would have sent. For the same
reason a round where a request failed for good (its retries spent) is never logged: the run
stops, and the resume sends the whole round again, as if it had never been tried.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from self_instruct.backends import load_backend, resolve_defaults
from self_instruct.backends.base import Backend, Completion, SamplingParams
from self_instruct.config import RESUMABLE_OPTIONS, PipelineConfig
from self_instruct.generation.jobs import (
    CLASSIFICATION,
    INSTANCES,
    INSTRUCTIONS,
    Candidate,
    Job,
    Limits,
    Parsed,
    RequestsFailedError,
    run_is_over,
)
from self_instruct.generation.progress import RunProgress
from self_instruct.generation.scheduler import Scheduler
from self_instruct.generation.seed_lengths import check_seed_lengths
from self_instruct.prompting.filters import cap_instances, filter_instances, instruction_rejection
from self_instruct.prompting.modes import prompting_mode
from self_instruct.prompting.prompts import PromptTemplates, load_templates
from self_instruct.prompting.seeds import SeedTask, load_seeds, prompting_seeds, seeds_fingerprint
from self_instruct.rouge.index import FilterDecision, RougeIndex
from self_instruct.runlog.log import RunLog
from self_instruct.runlog.previous import load_previous
from self_instruct.runlog.records import INSTRUCTION, ROUND, Record, cut, rejection, similar
from self_instruct.runlog.replay import History, Replay
from self_instruct.runlog.summary import RunSummary
from self_instruct.schemas import check_structured_installed

__all__ = ["Pipeline", "RequestsFailedError", "derive_seed", "run_identity"]

TOP_K_SIMILAR = 10


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from the run seed and a position, stable across processes and platforms."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


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
        self._backend = backend
        self._owns_backend = backend is None  # then loaded here, and closed here
        self.progress = progress
        self.index = RougeIndex()  # the pool: seeds, imports, new ones
        # The run's counts (the card's funnel and usage too): filled by the pass that replays
        # the log, then by each commit, so nothing reads the log again for them.
        self.summary = RunSummary(config.num_instructions)
        self._seed_texts = [s.instruction for s in self.seeds]
        self._n_seeds = len(self.seeds)
        self._round_ids: Counter[int] = Counter()  # instructions accepted so far per open round
        self._instruction_params = SamplingParams(
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            stop=self.mode.instruction_stop,
            repetition_penalty=config.repetition_penalty,
            presence_penalty=config.presence_penalty,
            schema=self.mode.instruction_schema,
        )

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
            self.index.add(self._seed_texts)
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
        marker = {"round": last_round, "accepted": 0, "rejected": 0, "imported": len(previous)}
        self.log.append_round(previous, marker)
        return [*previous, {**marker, "type": ROUND}]

    def _generate(self, history: History) -> Iterator[Record]:
        cfg = self.config
        limits = Limits(cfg.batch_size, cfg.sample_lag, cfg.num_instructions, cfg.patience)
        if run_is_over(history, limits):  # a finished run replays without a backend
            return
        check_seed_lengths(self.seeds, self.backend, cfg)  # before any request: may never fit
        with RunProgress(cfg.num_instructions, self.summary.accepted, self.progress) as progress:
            progress.rejected.update(self.summary.rejected)
            scheduler = Scheduler(self, self.backend, limits, history, progress)
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

    # -- the steps, as the scheduler calls them ---------------------------------------------

    def instruction_job(self, prompt_index: int, round_: int, visible: int) -> Job:
        """Prompt `prompt_index` with the paper's mix: up to 2 machine instructions (from the
        imported ones and the first `visible` new ones), the rest seeds, shuffled."""
        cfg = self.config
        rng = random.Random(derive_seed(cfg.seed, "prompt", prompt_index))
        n_machine = self.summary.imported + visible
        picked = rng.sample(range(n_machine), min(cfg.num_machine_instructions, n_machine))
        examples = [self.index.texts[self._n_seeds + i] for i in picked]
        n_seeds = min(cfg.num_prompt_instructions - len(examples), len(self._seed_texts))
        examples += rng.sample(self._seed_texts, n_seeds)
        rng.shuffle(examples)
        seed = derive_seed(cfg.seed, "instructions", prompt_index)
        params = replace(self._instruction_params, seed=seed)
        prompt = self.mode.instruction_prompt(examples)
        return Job(INSTRUCTIONS, round_, prompt, params, (prompt_index, examples))

    def parse(self, job: Job, completion: Completion) -> Parsed:
        """The answer's list, the parser's and the heuristics' rejections taken out."""
        items = self.mode.instructions(completion)
        if isinstance(items, str):  # the whole answer is rejected, for this reason
            return Parsed([rejection(job.round, completion.text, items)], [])
        parsed = Parsed([], [])
        for item in items:
            if reason := instruction_rejection(item):
                parsed.rejections.append(rejection(job.round, item.text, reason))
            else:
                parsed.texts.append(item.text)
        return parsed

    def pool_rejects(self, texts: Sequence[str]) -> list[bool]:
        return self.index.pool_rejects(texts, self.config.rouge_threshold)

    def filter_prompts(
        self, parsed: Sequence[tuple[Job, Parsed]]
    ) -> list[tuple[list[Record], dict[int, Record]]]:
        """The greedy ROUGE-L filter against the pool and everything accepted before, in
        prompt order (one call for all of them: the same decisions as one call per prompt)."""
        cfg = self.config
        texts = [text for _, answer in parsed for text in answer.texts]
        decisions = iter(
            self.index.filter(
                texts, cfg.rouge_threshold, TOP_K_SIMILAR, provenance_pool=cfg.provenance_pool
            )
        )
        results: list[tuple[list[Record], dict[int, Record]]] = []
        for job, answer in parsed:
            rejected, accepted = list(answer.rejections), {}
            for k, text in enumerate(answer.texts):
                if (decision := next(decisions)).accepted:
                    accepted[k] = self._instruction_record(job, text, decision)
                else:
                    rejected.append(rejection(job.round, text, "too_similar", decision))
            results.append((rejected, accepted))
        return results

    def _instruction_record(self, job: Job, text: str, decision: FilterDecision) -> Record:
        prompt_index, examples = job.subject
        self._round_ids[job.round] += 1
        return {
            "type": INSTRUCTION,
            "id": f"r{job.round:05d}-{self._round_ids[job.round] - 1:02d}",
            "round": job.round,
            "prompt": prompt_index,  # what a resume's sampling and admission read back
            "instruction": text,
            "max_rouge_l": decision.max_score,
            "mean_rouge_l": decision.mean_score,
            "most_similar": similar(decision),
            "prompt_instructions": examples,
        }

    def classification_job(self, candidate: Candidate) -> Job:
        """Asked of every instruction, in --classification-only runs too (as the paper does).
        Seeded by the candidate's place, known before the filter decides it (scheduler.py)."""
        params = SamplingParams(
            max_new_tokens=self.mode.classification_max_tokens,
            stop=self.mode.classification_stop,
            seed=derive_seed(self.config.seed, "classify", *candidate.key),
            schema=self.mode.classification_schema,
        )
        prompt = self.mode.classification_prompt(candidate.text)
        return Job(CLASSIFICATION, candidate.round, prompt, params, candidate)

    def instance_job(self, candidate: Candidate, answer: Completion) -> Job:
        cfg, mode = self.config, self.mode
        is_clf = mode.is_classification(answer)
        params = SamplingParams(
            max_new_tokens=cfg.instance_max_new_tokens,
            stop=mode.instance_stop(cfg.max_instances_per_task),
            repetition_penalty=cfg.repetition_penalty,
            presence_penalty=cfg.instance_presence_penalty,
            seed=derive_seed(cfg.seed, "instances", *candidate.key),
            schema=mode.instance_schema(is_clf, cfg.max_instances_per_task),
        )
        prompt = mode.instance_prompt(candidate.text, is_clf)
        return Job(INSTANCES, candidate.round, prompt, params, (candidate, is_clf))

    def add_instances(self, record: Record, job: Job, answer: Completion) -> None:
        """Parse and filter the instances, keep a seeded sample of at most the cap."""
        is_clf = job.subject[1]
        parsed, invalid = self.mode.instances(answer, is_clf, self.config.max_instances_per_task)
        kept, dropped = filter_instances(parsed)
        dropped += invalid
        rng = random.Random(derive_seed(self.config.seed, "instance-cap", record["id"]))
        kept, over = cap_instances(kept, self.config.max_instances_per_task, rng)
        dropped += over
        record["is_classification"] = is_clf
        record["instances"] = [{"input": i.input, "output": i.output} for i in kept]
        record["rejected_instances"] = [
            {"input": cut(i.input), "output": cut(i.output), "reason": reason}
            for i, reason in dropped
        ]

    def commit(self, round_: int, records: list[Record], marker: dict[str, Any]) -> None:
        """One durable write of the whole round, counted as a replay of the log would."""
        self.log.append_round(records, marker)
        self._round_ids.pop(round_, None)
        for record in [*records, {**marker, "type": ROUND}]:
            self.summary.add(record)
