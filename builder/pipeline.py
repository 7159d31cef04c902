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
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .answers import classification_answer, instance_items, instruction_items
from .backends import Backend, Completion, SamplingParams, load_backend, resolve_defaults
from .config import RESUMABLE_OPTIONS, PipelineConfig
from .filters import cap_instances, filter_instances, instruction_rejection
from .previous import load_previous
from .progress import RunProgress
from .prompts import PromptTemplates, load_templates
from .records import INSTRUCTION
from .rouge import FilterDecision, RougeIndex
from .runlog import USAGE_KEYS, Record, RunLog
from .schemas import CLASSIFICATION, INSTRUCTION_LIST, check_structured_installed, instances_schema
from .seed_lengths import check_seed_lengths
from .seeds import SeedTask, load_seeds, seeds_fingerprint
from .summary import RunSummary

TOP_K_SIMILAR = 10
# Tokens for the yes/no answer: the paper's " Yes" needs 3, `{"answer": "Yes"}` about 8.
CLASSIFICATION_MAX_TOKENS = {False: 3, True: 16}
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
        self.seeds = self.seed_tasks
        if config.classification_only:
            self.seeds = [s for s in self.seeds if s.is_classification]
        if not self.seeds:
            raise ValueError(f"{config.seeds}: no seed tasks to prompt with")
        self.templates = load_templates(config.prompt_templates)
        self.log = RunLog(run_dir, run_identity(config, self.seeds, self.templates))
        self._backend = backend
        self.progress = progress
        self.index = RougeIndex()
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self._progress: RunProgress | None = None  # while generating
        self._summary = RunSummary()  # the log's, as it was opened

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
            summary = self._summary = RunSummary()  # counted in the same pass as the pool
            logged = summary.counted(self.log.iter_records())
            self.index.add(r["instruction"] for r in logged if r["type"] == INSTRUCTION)
            self.accepted = summary.accepted
            self.rejected.update(summary.rejected)
            every = itertools.chain(
                self.log.iter_type(INSTRUCTION), self._generate(summary.next_round)
            )
            yield from itertools.islice(every, summary.imported + self.config.num_instructions)
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
        """Consecutive rounds at the end of the log that accepted nothing (when it was opened)."""
        return self._summary.idle_rounds

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
            [
                self.templates.instruction_prompt(ex, cfg.classification_only, cfg.structured)
                for ex in shown
            ],
            SamplingParams(
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                stop=self._stop(self.templates.instruction_stop),
                repetition_penalty=cfg.repetition_penalty,
                presence_penalty=cfg.presence_penalty,
                seed=derive_seed(cfg.seed, "instructions", round_),
                schema=INSTRUCTION_LIST if cfg.structured else None,
            ),
        )
        rejected: list[Record] = []
        candidates: list[tuple[str, list[str]]] = []
        for completion, examples in zip(completions, shown, strict=True):
            items = instruction_items(completion, cfg)
            if isinstance(items, str):  # the whole answer is rejected, for this reason
                rejected.append(_rejection(round_, completion.text, items))
                continue
            for item in items:
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

    def _stop(self, stop: tuple[str, ...]) -> tuple[str, ...]:
        """A step's stop sequences; none under a schema, whose answer ends where its JSON does
        (a stop such as the paper's "\n\n" could cut it short)."""
        return () if self.config.structured else stop

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
        completions = self._ask_instances(round_, texts, labels)
        for record, is_clf, completion in zip(accepted, labels, completions, strict=True):
            parsed, invalid = instance_items(completion, is_clf, cfg)
            kept, dropped = filter_instances(parsed)
            dropped += invalid
            rng = random.Random(derive_seed(cfg.seed, "instance-cap", record["id"]))
            kept, over = cap_instances(kept, cfg.max_instances_per_task, rng)
            dropped += over
            record["is_classification"] = is_clf
            record["instances"] = [{"input": i.input, "output": i.output} for i in kept]
            record["rejected_instances"] = [
                {"input": _cut(i.input), "output": _cut(i.output), "reason": reason}
                for i, reason in dropped
            ]

    def _ask_instances(self, round_: int, texts: list[str], labels: list[bool]) -> list[Completion]:
        """One instance completion per instruction, in order. Under `--structured` the two
        kinds of task have different schemas, so each kind goes as a call of its own."""
        cfg = self.config
        params = SamplingParams(
            max_new_tokens=cfg.instance_max_new_tokens,
            stop=self._stop(self.templates.instance_stop_for(cfg.max_instances_per_task)),
            repetition_penalty=cfg.repetition_penalty,
            presence_penalty=cfg.instance_presence_penalty,
            seed=derive_seed(cfg.seed, "instances", round_),
        )
        prompts_ = [
            self.templates.instance_prompt(t, c, cfg.structured)
            for t, c in zip(texts, labels, strict=True)
        ]
        if not cfg.structured:
            return self._ask(round_, prompts_, params)
        completions: list[Completion] = [None] * len(texts)  # type: ignore[list-item]
        for kind in (False, True):
            where = [i for i, is_clf in enumerate(labels) if is_clf is kind]
            schema = instances_schema(kind, cfg.max_instances_per_task)
            if where:
                answers = self._ask(
                    round_, [prompts_[i] for i in where], replace(params, schema=schema)
                )
                for i, answer in zip(where, answers, strict=True):
                    completions[i] = answer
        return completions

    def _classify(self, round_: int, texts: list[str]) -> list[bool]:
        """Asked of every instruction, in --classification-only runs too (as the paper does)."""
        self._step("classification", len(texts))
        structured = self.config.structured
        completions = self._ask(
            round_,
            [self.templates.classification_prompt(t, structured) for t in texts],
            SamplingParams(
                max_new_tokens=CLASSIFICATION_MAX_TOKENS[structured],
                stop=self._stop(self.templates.classification_stop),
                seed=derive_seed(self.config.seed, "classify", round_),
                schema=CLASSIFICATION if structured else None,
            ),
        )
        return [classification_answer(c, structured) for c in completions]

    def _ask(self, round_: int, prompts_: list[str], params: SamplingParams) -> list[Completion]:
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
