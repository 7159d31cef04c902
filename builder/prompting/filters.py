"""The paper's heuristic filters. Each rejection carries a reason name, counted in the funnel.

Instruction filters (released `bootstrap_instructions.py`): length in words, words a text-only
model cannot act on, "Write a program" (the model appended it to many tasks), a first character
that is punctuation or not ASCII, and an item of a completion stopped by the token limit; all are
tested on the paper's `str.capitalize()` form of the text. Instance filters (released
`prepare_for_finetuning.py`): empty outputs, outputs equal to their input, fields ending with a
colon (unfinished), exact duplicates, tasks whose same input got different outputs, and the
paper's cap of 5 instances per task (a seeded random sample).
The ROUGE-L near-duplicate filter lives in `rouge/`, with its own reason `too_similar`.

`not_a_task` is not one of the paper's filters but a check of what a run kept, for chat models
(`scripts/bench_yield.py`, the tests): a row that is the model's talk, an answer, or two tasks.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence

from self_instruct.prompting.parsing import PREAMBLE_START, ParsedInstance, ParsedItem
from self_instruct.schemas import INVALID_JSON

MIN_WORDS_EXCLUSIVE = 3  # "<= 3 words" is too short
MAX_WORDS = 150
BLACKLIST = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
)
_BLACKLIST_RE = re.compile(r"\b(" + "|".join(map(re.escape, BLACKLIST)) + r")\b", re.IGNORECASE)

INSTRUCTION_REASONS = (
    "truncated",
    "too_short",
    "too_long",
    "blacklisted_word",
    "write_a_program",
    "starts_with_punctuation",
    "starts_with_non_ascii",
    "too_similar",
    INVALID_JSON,  # --structured: an answer that is not the JSON its schema asks for
    "beyond_quota",  # valid, but the round that reached --num-instructions had more
)
INSTANCE_REASONS = (
    "truncated",
    "empty_output",
    "output_equals_input",
    "unfinished",
    "duplicate",
    "conflicting_outputs",
    INVALID_JSON,
    "over_instance_cap",  # valid, but the task had more than --max-instances-per-task
)


NOT_A_TASK_REASONS = ("preamble", "answer", "two_tasks")
_PREAMBLE = re.compile(
    rf"^{PREAMBLE_START}|\b(?:more|new|some|following|these) (?:tasks|examples|instructions)\b.*:$",
    re.IGNORECASE,
)
_ANSWER = re.compile(
    r"^(?:(?:yes|no)[,.!]|(?:the )?answer (?:is|would be)\b|"
    r"(?:answer|output|input|solution|class label|example\s*\d*)\s*:)",
    re.IGNORECASE,
)
# A list marker inside the text: "... the essay. 10. Write a poem", "... Task 2: Sort ..."
_SECOND_TASK = re.compile(r"\s(?:\d+\s*[.)]|(?i:task)\s*\d+\s*:|[-*•]|\*\*\d+\.\*\*)\s+[A-Z]")


def not_a_task(text: str) -> str | None:
    """Why `text` is not a task: "preamble" (the model's talk: "Sure! Here are more tasks:"),
    "answer" (it answers instead of asking: "Yes, the email is spam"), "two_tasks" (a second
    list item glued on: "Write a haiku. 10. Sort the list"); None for a task. A heuristic over
    the shapes chat models produce, tested on hand-written cases."""
    text = text.strip()
    checks = (
        ("preamble", _PREAMBLE.search(text) is not None),
        ("answer", _ANSWER.match(text) is not None),
        ("two_tasks", _SECOND_TASK.search(text) is not None),
    )
    return next((reason for reason, failed in checks if failed), None)


def instruction_rejection(item: ParsedItem) -> str | None:
    """The first filter `item` fails, or None if it passes them all (ROUGE-L aside)."""
    text = item.filtered_text
    n_words = len(text.split())
    checks = (
        ("truncated", item.truncated),
        ("too_short", n_words <= MIN_WORDS_EXCLUSIVE),
        ("too_long", n_words > MAX_WORDS),
        ("blacklisted_word", _BLACKLIST_RE.search(text) is not None),
        ("write_a_program", text.startswith("Write a program")),
        ("starts_with_punctuation", text[:1] in string.punctuation),
        ("starts_with_non_ascii", not text[:1].isascii()),
    )
    return next((reason for reason, failed in checks if failed), None)


def _instance_rejection(inst: ParsedInstance) -> str | None:
    checks = (
        ("truncated", inst.truncated),
        ("empty_output", not inst.output),
        ("output_equals_input", inst.input == inst.output),
        ("unfinished", inst.input.endswith(":") or inst.output.endswith(":")),
    )
    return next((reason for reason, failed in checks if failed), None)


def _conflicting(pairs: Sequence[tuple[str, str]]) -> bool:
    outputs: dict[str, str] = {}
    return any(i and outputs.setdefault(i, o) != o for i, o in pairs)


def filter_instances(
    instances: Sequence[ParsedInstance],
) -> tuple[list[ParsedInstance], list[tuple[ParsedInstance, str]]]:
    """Kept instances in order, and the rejected ones with their reasons.

    As in the paper, one non-empty input with two different outputs discards the whole task's
    instances: the model did not understand the task.
    """
    rejected = []
    valid = []
    for inst in instances:
        if reason := _instance_rejection(inst):
            rejected.append((inst, reason))
        else:
            valid.append(inst)
    if _conflicting([(i.input, i.output) for i in valid]):
        return [], rejected + [(inst, "conflicting_outputs") for inst in valid]
    seen: set[tuple[str, str]] = set()
    kept = []
    for inst in valid:
        key = (inst.input, inst.output)
        if key in seen:
            rejected.append((inst, "duplicate"))
        else:
            seen.add(key)
            kept.append(inst)
    return kept, rejected


def cap_instances(
    kept: Sequence[ParsedInstance], cap: int, rng: random.Random
) -> tuple[list[ParsedInstance], list[tuple[ParsedInstance, str]]]:
    """At most `cap` of a task's kept instances, a random sample as in the paper's fine-tuning
    data (which it draws from a set, so no seed reproduces its exact pick); order is kept."""
    if len(kept) <= cap:
        return list(kept), []
    chosen = set(rng.sample(range(len(kept)), cap))
    over = [(inst, "over_instance_cap") for n, inst in enumerate(kept) if n not in chosen]
    return [inst for n, inst in enumerate(kept) if n in chosen], over
