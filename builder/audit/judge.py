"""A judge model's verdicts: the paper's two human evaluations, asked of a model instead.

`audit` asks the three questions of the paper's Table 2 about one generated instruction with one
instance; `rating` asks Figure 6's A-D rating of a model's answer. The prompts are template files
(`judge.yaml`, our own wording of the paper's rubric). Every backend returns plain text,
so each prompt ends where the answer begins and the answer is read back strictly in one fixed
format: anything else is a failure counted under its own name, never a guess and never a crash.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from self_instruct.backends import load_backend
from self_instruct.backends.base import Backend, SamplingParams
from self_instruct.config import EMBEDDED_MODEL, BackendName, PipelineConfig
from self_instruct.utils.ranges import COUNT, RANGE, check_ranges

TEMPLATES_PATH = Path(__file__).parent / "judge.yaml"
# Table 2's questions, in the order the prompt asks them (Q1, Q2, Q3).
QUESTIONS = ("valid_instruction", "appropriate_input", "correct_output")
RATINGS = ("A", "B", "C", "D")
UNPARSEABLE = "unparseable"  # the judge answered, but not in the asked format
REQUEST_FAILED = "request_failed"  # a server request failed for good after its retries
Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile

_AUDIT_LINE = re.compile(r"Q([123])\s*:\s*(yes|no)\b[\s.,:;\-\u2013\u2014]*(\S.*)", re.IGNORECASE)
_RATING_LINE = re.compile(r"Rating\s*:\s*([ABCD])\b[\s.,:;\-\u2013\u2014]*(\S.*)")


@dataclass
class JudgeArguments:
    """How `scripts/evaluate_model.py --judge` reaches its judge (the paper's Figure 6)."""

    judge: str | None = field(
        default=None,
        metadata={
            "help": "Also rate every answer on the paper's A-D scale (its Figure 6) with this "
            f"judge: '{EMBEDDED_MODEL}', a checkpoint, or the model name --judge-endpoint serves."
        },
    )
    judge_backend: BackendName = field(
        default="transformers", metadata={"help": "How to reach the judge (as generate's)."}
    )
    judge_endpoint: list[str] = field(
        default_factory=list, metadata={"help": "Judge server URLs (tgi/openai backends)."}
    )
    judge_chat: bool = field(
        default=False, metadata={"help": "openai judge: ask through /v1/chat/completions."}
    )
    judge_max_new_tokens: int = field(
        default=64, metadata={"help": "Token limit of a rating.", RANGE: COUNT}
    )
    plot: str = field(
        default="ratings.png", metadata={"help": "With --judge: where the ratings' PNG goes."}
    )

    def __post_init__(self) -> None:
        check_ranges(self)

    def backend_config(self) -> PipelineConfig:
        """The options `load_backend` reads, as a generation run names them."""
        return PipelineConfig(
            model=self.judge or EMBEDDED_MODEL,
            backend=self.judge_backend,
            endpoint=self.judge_endpoint,
            chat=self.judge_chat,
        )


class JudgeFormatError(ValueError):
    """A judge's answer that is not in the asked format; the message says what is wrong."""


@dataclass(frozen=True)
class Verdict:
    """One answer of the judge: `yes`/`no` (audit) or a letter A-D (rating), and its reason."""

    answer: str
    reason: str


@functools.cache
def judge_templates() -> dict[str, str]:
    """The prompt templates, read once from the package's template file."""
    return yaml.safe_load(TEMPLATES_PATH.read_text(encoding="utf-8"))


def templates_fingerprint() -> str:
    """Hash of the judge prompts: a judgment is only reused when the same prompt asked it."""
    return hashlib.sha256(TEMPLATES_PATH.read_bytes()).hexdigest()


NO_INPUT = "(none)"  # what the prompts show for an empty input (the audit prompt names it)


def audit_prompt(instruction: str, input: str, output: str) -> str:
    template = judge_templates()["audit"]
    return template.format(instruction=instruction, input=input or NO_INPUT, output=output)


def rating_prompt(instruction: str, input: str, reference: str, answer: str) -> str:
    return judge_templates()["rating"].format(
        instruction=instruction, input=input or NO_INPUT, reference=reference, answer=answer
    )


def _answer_lines(text: str, prefix: str) -> list[str]:
    """The answer's non-empty lines, with the prefix the prompt ended on put back in front."""
    text = text.strip()
    if not text.lower().startswith(prefix.lower()):
        text = f"{prefix} {text}"
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_audit(text: str) -> list[Verdict]:
    """`Q1: yes - why` / `Q2: ...` / `Q3: ...`: the first three lines; later lines are ignored."""
    lines = _answer_lines(text, "Q1:")[: len(QUESTIONS)]
    lines += [""] * (len(QUESTIONS) - len(lines))
    verdicts = []
    for number, line in enumerate(lines, 1):
        match = _AUDIT_LINE.fullmatch(line)
        if not match or int(match[1]) != number:
            raise JudgeFormatError(f"line {number} is {line!r}, not 'Q{number}: yes|no - reason'")
        verdicts.append(Verdict(match[2].lower(), match[3].strip()))
    return verdicts


def parse_rating(text: str) -> Verdict:
    """`Rating: A - why` on the answer's first line."""
    first = _answer_lines(text, "Rating:")[0]
    match = _RATING_LINE.fullmatch(first)
    if not match:
        raise JudgeFormatError(f"{first!r} is not 'Rating: A|B|C|D - reason'")
    return Verdict(match[1], match[2].strip())


def ask(
    backend: Backend,
    prompts: Sequence[str],
    params: SamplingParams,
    parse: Callable[[str], Any],
) -> list[dict[str, Any]]:
    """Ask the judge, one result per prompt: `{"verdict": parsed or None, "failure": name or
    None, "raw": the judge's text, "error": what was wrong}`."""
    results = []
    for completion in backend.generate(list(prompts), params):
        if completion is None:
            results.append({"verdict": None, "failure": REQUEST_FAILED, "raw": "", "error": ""})
            continue
        try:
            verdict, failure, error = parse(completion.text), None, ""
        except JudgeFormatError as err:
            verdict, failure, error = None, UNPARSEABLE, str(err)
        results.append(
            {"verdict": verdict, "failure": failure, "raw": completion.text, "error": error}
        )
    return results


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: unlike p +- z*se it stays inside [0, 1] and
    is honest for the small samples and extreme shares that a 200-item audit produces."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_answers(
    backend: Backend, items: Sequence[tuple[str, str, str, str]], max_new_tokens: int
) -> dict[str, int]:
    """How many answers the judge rated A, B, C and D (Figure 6), and how many it did not.

    Each item is `(instruction, input, reference, answer)`; judged greedily, so reproducibly."""
    prompts = [rating_prompt(*item) for item in items]
    results = ask(backend, prompts, SamplingParams(max_new_tokens=max_new_tokens), parse_rating)
    counts = Counter(r["verdict"].answer if r["verdict"] else r["failure"] for r in results)
    return {name: counts[name] for name in (*RATINGS, UNPARSEABLE, REQUEST_FAILED)}


def rate_models(
    answered: dict[str, Sequence[tuple[str, str, str, str]]],
    judge: PipelineConfig,
    max_new_tokens: int,
) -> dict[str, dict[str, int]]:
    """`rate_answers` for each model's answers, with one judge loaded once."""
    backend = load_backend(judge)
    try:
        return {
            name: rate_answers(backend, items, max_new_tokens) for name, items in answered.items()
        }
    finally:
        backend.close()


def rating_shares(counts: dict[str, int]) -> dict[str, float]:
    """Each rating's share of the rated answers (those the judge did not rate are left out)."""
    rated = sum(counts[r] for r in RATINGS)
    return {r: counts[r] / rated if rated else 0.0 for r in RATINGS}
