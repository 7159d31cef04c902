"""The bootstrap loop (paper section 2): sample -> generate -> filter -> classify -> instances.

One round turns `batch_size` instruction prompts into candidates, filters them (heuristics, then
ROUGE-L against the pool), asks which of the accepted ones are classification tasks, generates
their instances and appends everything, rejections included, to the run log in one durable write.
Every random choice of round r comes from a generator seeded with (seed, r), so a resumed run
repeats exactly the rounds an uninterrupted one would have made. For the same reason a round
where a request failed for good (its retries spent) is never logged: the run stops, and the
resume sends the whole round again, as if it had never been tried.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .backends import Backend, Completion, SamplingParams, load_backend, resolve_defaults
from .backends.base import Prompt
from .config import RESUMABLE_OPTIONS, PipelineConfig
from .filters import cap_instances, filter_instances, instruction_rejection
from .modes import prompting_mode
from .previous import load_previous
from .progress import RunProgress
from .prompts import PromptTemplates, load_templates
from .rouge import FilterDecision, RougeIndex
from .runlog import USAGE_KEYS, Record, RunLog
from .seed_lengths import check_seed_lengths
from .seeds import SeedTask, load_seeds, seeds_fingerprint

TOP_K_SIMILAR = 10
# Characters of a rejected text kept in the run log: enough to see why it was rejected. A server
# that answers 10 MB would otherwise grow the log by as much per rejected item.
MAX_REJECTED_CHARS = 2_000


class RequestsFailedError(RuntimeError):
    """Requests of a round failed for good; the round was not logged, so a resume redoes it."""

    def __init__(self, round_: int, failed: int, total: int) -> None:
        super().__init__(
            f"{failed} of {total} requests of round {round_} failed for good (every retry spent); "
            "the round was not logged, so a resume sends it again"
        )
        self.round, self.failed = round_, failed


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
        self.seed_tasks = load_seeds(config.seeds)  # all of them go into the `sft` rows
        self.seeds = self.seed_tasks
        if config.classification_only:
            self.seeds = [s for s in self.seeds if s.is_classification]
        if not self.seeds:
            raise ValueError(f"{config.seeds}: no seed tasks to prompt with")
        self.templates = load_templates(config.prompt_templates)
        self.mode = prompting_mode(config, self.templates)
        self.log = RunLog(run_dir, run_identity(config, self.seeds, self.templates))
        self._backend = backend
        self.progress = progress
        self.index = RougeIndex()
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self._progress: RunProgress | None = None  # while generating

    @property
    def backend(self) -> Backend:
        """Loaded on first use: a finished run replays its log without loading any model."""
        if self._backend is None:
            self._backend = load_backend(self.config)
        return self._backend

    def __iter__(self) -> Iterator[Record]:
        """The first `num_instructions` accepted records: those in the log, then new ones.

        Rounds are logged whole, whatever the quota, so that a run extended later with a larger
        `num_instructions` is the same as one that asked for more from the start.
        """
        records = self.log.open()
        try:
            if self.config.resume_from and next(records, None) is None:
                self._import(load_previous(self.config.resume_from))
            self.index.add(s.instruction for s in self.seeds)
            self.index.add(r["instruction"] for r in self.log.iter_type("instruction"))
            imported = sum("imported_from" in r for r in self.log.iter_type("instruction"))
            self.accepted = sum(1 for _ in self.log.iter_type("instruction")) - imported
            self.rejected.update(r["reason"] for r in self.log.iter_type("rejected"))
            next_round = 1 + max((r["round"] for r in self.log.iter_type("round")), default=-1)
            every = itertools.chain(self.log.iter_type("instruction"), self._generate(next_round))
            yield from itertools.islice(every, imported + self.config.num_instructions)
        finally:
            self.log.close()

    def _import(self, previous: list[Record]) -> None:
        """Log an earlier version's instructions as this run's first round (see previous.py)."""
        last_round = max((r["round"] for r in previous), default=0)
        marker = {"round": last_round, "accepted": 0, "rejected": 0, "imported": len(previous)}
        self.log.append_round(previous, marker)

    @property
    def machine_instructions(self) -> list[str]:
        return self.index.texts[len(self.seeds) :]

    def _generate(self, next_round: int) -> Iterator[Record]:
        cfg = self.config
        if self.accepted < cfg.num_instructions:  # before any request: a seed may never fit
            check_seed_lengths(self.seeds, self.backend, cfg)
        idle, round_ = self._idle_rounds(), next_round
        with RunProgress(cfg.num_instructions, self.accepted, self.progress) as progress:
            progress.rejected.update(self.rejected)
            self._progress = progress
            try:
                while self.accepted < cfg.num_instructions and idle < cfg.patience:
                    accepted, rejected = self._round(round_)
                    idle = 0 if accepted else idle + 1
                    progress.round_done(round_, len(accepted), rejected)
                    round_ += 1
                    yield from accepted
            finally:
                self._progress = None
                if self._backend is not None:
                    self._backend.on_request = None
        if idle >= cfg.patience:
            tqdm.write(
                f"Stopped: {cfg.patience} rounds in a row accepted nothing "
                f"({self.accepted}/{cfg.num_instructions} instructions)."
            )

    def _idle_rounds(self) -> int:
        """Consecutive rounds at the end of the log that accepted nothing."""
        idle = 0
        for marker in self.log.iter_type("round"):
            idle = 0 if marker["accepted"] or marker.get("imported") else idle + 1
        return idle

    def _sample_examples(self, rng: random.Random) -> list[str]:
        """The paper's mix: up to 2 machine instructions, the rest seeds, shuffled."""
        cfg, machine = self.config, self.machine_instructions
        examples = rng.sample(machine, min(cfg.num_machine_instructions, len(machine)))
        n_seeds = min(cfg.num_prompt_instructions - len(examples), len(self.seeds))
        examples += rng.sample([s.instruction for s in self.seeds], n_seeds)
        rng.shuffle(examples)
        return examples

    def _step(self, step: str, requests: int) -> None:
        """Show `step` starting, and have the backend report its requests to the display."""
        if self._progress is not None:
            self._progress.begin_step(step, requests)
            self.backend.on_request = self._progress.on_request

    def _round(self, round_: int) -> tuple[list[Record], Counter[str]]:
        """One round, logged; its accepted records and its rejections by reason."""
        cfg = self.config
        usage_before = self._usage()
        rng = random.Random(derive_seed(cfg.seed, "round", round_))
        shown = [self._sample_examples(rng) for _ in range(cfg.batch_size)]
        self._step("instruction lists", len(shown))
        completions = self._ask(
            round_,
            [self.mode.instruction_prompt(ex) for ex in shown],
            SamplingParams(
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                stop=self.mode.instruction_stop,
                repetition_penalty=cfg.repetition_penalty,
                presence_penalty=cfg.presence_penalty,
                seed=derive_seed(cfg.seed, "instructions", round_),
            ),
        )
        rejected: list[Record] = []
        candidates: list[tuple[str, list[str]]] = []
        for completion, examples in zip(completions, shown, strict=True):
            for item in self.mode.instructions(completion):
                if reason := instruction_rejection(item):
                    rejected.append(_rejection(round_, item.text, reason))
                else:
                    candidates.append((item.text, examples))
        accepted = self._rouge_filter(round_, candidates, rejected)
        self._add_instances(round_, accepted)
        usage = {k: v - usage_before[k] for k, v in self._usage().items()}
        self.log.append_round(
            rejected + accepted,
            {"round": round_, "accepted": len(accepted), "rejected": len(rejected), **usage},
        )
        self.accepted += len(accepted)
        reasons = Counter(r["reason"] for r in rejected)
        self.rejected.update(reasons)
        return accepted, reasons

    def _rouge_filter(
        self, round_: int, candidates: list[tuple[str, list[str]]], rejected: list[Record]
    ) -> list[Record]:
        """Greedy ROUGE-L filter against the pool and the round's earlier acceptances."""
        decisions = self.index.filter(
            [text for text, _ in candidates], self.config.rouge_threshold, TOP_K_SIMILAR
        )
        accepted: list[Record] = []
        for (text, examples), decision in zip(candidates, decisions, strict=True):
            if not decision.accepted:
                rejected.append(_rejection(round_, text, "too_similar", decision))
                continue
            accepted.append(
                {
                    "type": "instruction",
                    "id": f"r{round_:05d}-{len(accepted):02d}",
                    "round": round_,
                    "instruction": text,
                    "max_rouge_l": decision.max_score,
                    "mean_rouge_l": decision.mean_score,
                    "most_similar": _similar(decision),
                    "prompt_instructions": examples,
                }
            )
        return accepted

    def _add_instances(self, round_: int, accepted: list[Record]) -> None:
        """Classify each accepted instruction, then generate and filter its instances."""
        if not accepted:
            return
        cfg = self.config
        texts = [r["instruction"] for r in accepted]
        labels = self._classify(round_, texts)
        self._step("instances", len(texts))
        completions = self._ask(
            round_,
            [self.mode.instance_prompt(t, c) for t, c in zip(texts, labels, strict=True)],
            SamplingParams(
                max_new_tokens=cfg.instance_max_new_tokens,
                stop=self.mode.instance_stop(cfg.max_instances_per_task),
                repetition_penalty=cfg.repetition_penalty,
                presence_penalty=cfg.instance_presence_penalty,
                seed=derive_seed(cfg.seed, "instances", round_),
            ),
        )
        for record, is_clf, completion in zip(accepted, labels, completions, strict=True):
            parsed = self.mode.instances(completion, is_clf)
            kept, dropped = filter_instances(parsed)
            rng = random.Random(derive_seed(cfg.seed, "instance-cap", record["id"]))
            kept, over = cap_instances(kept, cfg.max_instances_per_task, rng)
            dropped += over
            record["is_classification"] = is_clf
            record["instances"] = [{"input": i.input, "output": i.output} for i in kept]
            record["rejected_instances"] = [
                {"input": _cut(i.input), "output": _cut(i.output), "reason": reason}
                for i, reason in dropped
            ]

    def _classify(self, round_: int, texts: list[str]) -> list[bool]:
        """Asked of every instruction, in --classification-only runs too (as the paper does)."""
        self._step("classification", len(texts))
        completions = self._ask(
            round_,
            [self.mode.classification_prompt(t) for t in texts],
            SamplingParams(
                max_new_tokens=3,
                stop=self.templates.classification_stop,
                seed=derive_seed(self.config.seed, "classify", round_),
            ),
        )
        return [self.mode.is_classification(c) for c in completions]

    def _ask(self, round_: int, prompts_: list[Prompt], params: SamplingParams) -> list[Completion]:
        """Every completion of one step, or `RequestsFailedError` before anything is logged."""
        completions = self.backend.generate(prompts_, params)
        if failed := sum(c is None for c in completions):
            raise RequestsFailedError(round_, failed, len(completions))
        return completions

    def _usage(self) -> dict[str, float]:
        usage = self.backend.usage
        return {key: getattr(usage, key) for key in USAGE_KEYS}


def _rejection(
    round_: int, text: str, reason: str, decision: FilterDecision | None = None
) -> Record:
    record: Record = {"type": "rejected", "round": round_, "text": _cut(text), "reason": reason}
    if decision is not None:  # a near-duplicate: say of what
        record["max_rouge_l"] = decision.max_score
        record["most_similar"] = _similar(decision)[:1]
    return record


def _cut(text: str) -> str:
    """A rejected text as the run log keeps it: at most `MAX_REJECTED_CHARS`, and says so."""
    if len(text) <= MAX_REJECTED_CHARS:
        return text
    return f"{text[:MAX_REJECTED_CHARS]} [... {len(text) - MAX_REJECTED_CHARS} more characters]"


def _similar(decision: FilterDecision) -> list[dict[str, Any]]:
    """In the `instructions` row schema, and as JSON gives it back on replay."""
    return [{"instruction": text, "rouge_l": score} for text, score in decision.most_similar]
