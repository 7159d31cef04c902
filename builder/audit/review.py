"""`self-instruct audit DIR`: a judge model reviews a sample of a generated dataset.

The paper's Table 2, automated: a seeded sample of instructions (200 by default, as the paper),
one instance each, and the judge's yes/no (with a reason) to its three questions. Judgments are
appended to a run log (`DIR/.self-instruct/audit/<judge hash>/`) as each batch arrives, keyed by
the item's text, so a stopped audit resumes without judging anything twice, and a re-run with the
same seed and judge reproduces the same result. The result lands in the folder as the `audit`
configuration (`data/audit-<hash>.parquet`) and the card's "Quality audit" section. The folder's
lock is held from the sample to the card (`audit_lock`), so no export is published in between.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from self_instruct.audit import judge
from self_instruct.backends import BackendLoader, load_backend, resolve_defaults
from self_instruct.backends.base import Backend, SamplingParams
from self_instruct.config import BackendName, PipelineConfig, absolute_paths
from self_instruct.export.files import check_no_links
from self_instruct.layout import AUDIT_DIR, CARD, RUN_DIR
from self_instruct.runlog import RunLog
from self_instruct.runlog.lock import locked
from self_instruct.runlog.records import JUDGMENT, Judgment, judgment, round_marker
from self_instruct.utils.ranges import ANY, COUNT, NON_NEGATIVE, RANGE, check_ranges

CONFIG_NAME = "audit"
COMMAND = "self-instruct audit"  # what the folder's lock names to a process it refuses
# The share of "yes" the paper's expert reviewers gave GPT-3's data (Table 2), for comparison.
PAPER_SHARES = {
    "valid_instruction": 0.92,
    "appropriate_input": 0.79,
    "correct_output": 0.58,
    "all_valid": 0.54,
}
BACKEND_OPTIONS = (
    "model",
    "model_revision",
    "device",
    "dtype",
    "device_map",
    "backend",
    "endpoint",
    "max_concurrency",
    "batch_size",
    "chat",
    "request_timeout",
    "max_attempts",
)


class AuditError(ValueError):
    """A folder that cannot be audited; the message says what to pass instead."""


def _generation_option(name: str):
    """The field of `PipelineConfig` as it is: the judge is reached just as a generator is."""
    source = PipelineConfig.__dataclass_fields__[name]
    if source.default_factory is not MISSING:
        return field(default_factory=source.default_factory, metadata=source.metadata)
    return field(default=source.default, metadata=source.metadata)


@dataclass
class AuditConfig:
    """Options of `self-instruct audit`: which folder, how many items, which judge."""

    folder: str = field(metadata={"help": "Output folder of `self-instruct generate` to audit."})
    sample_size: int = field(
        default=200,
        metadata={
            "help": "Instructions to review, one instance each (the paper: 200).",
            RANGE: COUNT,
        },
    )
    seed: int = field(
        default=42, metadata={"help": "Draws the sample and each one's instance.", RANGE: ANY}
    )
    max_new_tokens: int = field(
        default=160,
        metadata={
            "help": "Token limit of one judgment (three one-sentence answers).",
            RANGE: COUNT,
        },
    )
    examples: int = field(
        default=3,
        metadata={"help": "Items judged 'no' shown on the card per question.", RANGE: NON_NEGATIVE},
    )
    model: str = _generation_option("model")
    model_revision: str | None = _generation_option("model_revision")
    device: str = _generation_option("device")
    dtype: str = _generation_option("dtype")
    device_map: str | None = _generation_option("device_map")
    backend: BackendName = _generation_option("backend")
    endpoint: list[str] = _generation_option("endpoint")
    max_concurrency: int = _generation_option("max_concurrency")
    batch_size: int | None = _generation_option("batch_size")
    chat: bool = _generation_option("chat")
    request_timeout: float = _generation_option("request_timeout")
    max_attempts: int = _generation_option("max_attempts")

    def __post_init__(self) -> None:
        check_ranges(self)  # the generation options' ranges come with their metadata
        # A judge checkpoint by its absolute path: its judgments are reused only for the same
        # files, whichever directory the audit is run from.
        self.model = absolute_paths({"model": self.model}, self.backend)["model"]

    def backend_config(self) -> PipelineConfig:
        """The generation options that reach the judge (`load_backend` reads only these), an
        unset batch size and 'auto' device made concrete for this machine."""
        options = {name: getattr(self, name) for name in BACKEND_OPTIONS}
        return resolve_defaults(PipelineConfig(**options))

    def identity(self) -> dict[str, Any]:
        """What decides a judgment (not where the judge runs): judgments are reused only for it."""
        return {
            "backend": self.backend,
            "model": self.model,
            "chat": self.chat,
            "max_new_tokens": self.max_new_tokens,
            "templates_sha256": judge.templates_fingerprint(),
        }


def item_key(instruction: str, input: str, output: str) -> str:
    """Names an item by its text: a judgment belongs to what was judged, not to a row number."""
    return hashlib.sha256(json.dumps([instruction, input, output]).encode()).hexdigest()[:16]


def _check_card(folder: Path) -> None:
    if not (folder / CARD).is_file():
        raise AuditError(
            f"{folder} has no {CARD}: pass the output folder of `self-instruct generate`."
        )


@contextlib.contextmanager
def audit_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's lock, the one `generate` and `push` take (re-entrant): an export
    published between the sample and the card would get a card whose audit judged the export
    before it. A link where the audit writes (its log, data/, the card) is refused, not followed.
    """
    _check_card(folder)  # first: the lock would make a run directory in a mistyped folder
    with locked(folder / RUN_DIR, command=COMMAND):
        check_no_links(folder)
        yield


def load_instances(folder: Path) -> list[dict[str, Any]]:
    """The folder's `instances` rows, read the way a user reads them."""
    import datasets

    _check_card(folder)
    try:
        rows = datasets.load_dataset(str(folder), "instances", split="train")
    except ValueError as err:
        raise AuditError(f"{folder}: cannot read its `instances` configuration ({err}).") from err
    return rows.to_list()


def draw_sample(instances: list[dict[str, Any]], size: int, seed: int) -> list[dict[str, Any]]:
    """`size` instructions drawn with `seed`, one of each one's instances, in dataset order."""
    from self_instruct.generation.steps import derive_seed

    by_instruction: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in instances:
        by_instruction[row["instruction_id"]].append(row)
    ids = list(by_instruction)
    chosen = sorted(random.Random(seed).sample(range(len(ids)), min(size, len(ids))))
    sample = []
    for index in chosen:
        rows = by_instruction[ids[index]]
        row = rows[random.Random(derive_seed(seed, ids[index])).randrange(len(rows))]
        sample.append({**row, "key": item_key(row["instruction"], row["input"], row["output"])})
    return sample


@dataclass
class AuditResult:
    """What the card and the `audit` configuration show."""

    items: list[dict[str, Any]]  # the sample, each with its judgment (or failure)
    summary: dict[str, Any]  # see `summarize`


def run_audit(
    config: AuditConfig,
    backend: Backend | None = None,
    progress: bool = True,
    *,
    loader: BackendLoader = load_backend,
) -> AuditResult:
    """Judge the sample (the part not yet in the log), then aggregate everything logged.

    Without `backend`, `loader` builds the judge from the options, only if any judgment is due.

    The folder's lock is held meanwhile; hold `audit_lock` around this and `write_audit` too,
    as the command does, so that the card the audit lands on is the one it sampled."""
    folder = Path(config.folder)
    with audit_lock(folder):
        sample = draw_sample(load_instances(folder), config.sample_size, config.seed)
        if not sample:
            raise AuditError(f"{folder} has no instances to audit.")
        judged = _judge_pending(folder, sample, config, backend or loader, progress)
    items = [{**item, **_outcome(judged.get(item["key"]))} for item in sample]
    return AuditResult(items, summarize(items, config))


def _judge_pending(
    folder: Path,
    sample: list[dict],
    config: AuditConfig,
    judge_with: Backend | BackendLoader,
    progress: bool,
) -> dict[str, dict]:
    """Every judgment of the sample: those logged before, and the rest, asked now."""
    identity = config.identity()
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    log = RunLog(folder / AUDIT_DIR / digest, identity)
    judged = {r["key"]: r for r in log.open() if r["type"] == JUDGMENT}
    pending = list({i["key"]: i for i in sample if i["key"] not in judged}.values())
    try:
        if pending:
            own = not isinstance(judge_with, Backend)
            backend = judge_with(config.backend_config()) if own else judge_with
            try:
                judged |= _judge(log, backend, pending, config, progress)
            finally:
                if own:
                    backend.close()
    finally:
        log.close()
    return judged


def _judge(
    log: RunLog, backend: Backend, pending: list[dict], config: AuditConfig, progress: bool
) -> dict[str, dict]:
    """Ask in batches; each batch's judgments are durable before the next one is asked."""
    params = SamplingParams(max_new_tokens=config.max_new_tokens)  # greedy: reproducible
    judged: dict[str, dict] = {}
    bar = tqdm(total=len(pending), desc="Judged", unit="item", disable=not progress)
    size = config.backend_config().batch_size
    for start in range(0, len(pending), size):
        batch, round_ = pending[start : start + size], log.next_round  # the log's rounds go on
        prompts = [judge.audit_prompt(i["instruction"], i["input"], i["output"]) for i in batch]
        results = judge.ask(backend, prompts, params, judge.parse_audit)
        records = [
            _record(item["key"], round_, result)
            for item, result in zip(batch, results, strict=True)
            if result["failure"] != judge.REQUEST_FAILED  # not logged: asked again on resume
        ]
        marker = round_marker({"round": round_, "asked": len(batch), "judged": len(records)})
        log.append_round(records, marker)
        judged |= {r["key"]: r for r in records}
        bar.update(len(batch))
    bar.close()
    return judged


def _record(key: str, round_: int, result: dict[str, Any]) -> Judgment:
    verdicts = result["verdict"] or []
    return judgment(
        key=key,
        round_=round_,
        answers=[v.answer == "yes" for v in verdicts] or None,
        reasons=[v.reason for v in verdicts] or None,
        failure=result["failure"],
        raw=result["raw"],
        error=result["error"],
    )


def _outcome(record: dict[str, Any] | None) -> dict[str, Any]:
    """One item's columns of the `audit` configuration (no answers for a failed judgment)."""
    record = record or {"failure": judge.REQUEST_FAILED, "raw": "", "error": ""}
    answers = record.get("answers") or [None] * len(judge.QUESTIONS)
    reasons = record.get("reasons") or [""] * len(judge.QUESTIONS)
    columns: dict[str, Any] = {}
    for question, answer, reason in zip(judge.QUESTIONS, answers, reasons, strict=True):
        columns |= {question: answer, f"{question}_reason": reason}
    all_valid = None if record["failure"] else all(answers)
    failure = record["failure"] or ""
    return columns | {"all_valid": all_valid, "failure": failure, "judge_output": record["raw"]}


def share(yes: int, n: int) -> dict[str, Any]:
    low, high = judge.wilson_interval(yes, n)
    return {"yes": yes, "n": n, "share": yes / n if n else None, "low": low, "high": high}


def summarize(items: list[dict[str, Any]], config: AuditConfig) -> dict[str, Any]:
    """Share "yes" per question and for all fields, over the items the judge answered."""
    from self_instruct.export.provenance import describe_model

    answered = [i for i in items if not i["failure"]]
    shares = {
        question: share(sum(bool(i[question]) for i in answered), len(answered))
        for question in (*judge.QUESTIONS, "all_valid")
    }
    failures = {
        name: sum(i["failure"] == name for i in items)
        for name in (judge.UNPARSEABLE, judge.REQUEST_FAILED)
    }
    return {
        "judge": " at ".join(filter(None, describe_model(config.backend_config()))),
        "backend": config.backend,
        "date": datetime.now(UTC).date().isoformat(),
        "sample_size": len(items),
        "answered": len(answered),
        "failures": failures,
        "seed": config.seed,
        "shares": shares,
        "paper": PAPER_SHARES,
        "templates_sha256": judge.templates_fingerprint(),
    }
