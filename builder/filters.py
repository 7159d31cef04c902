"""The paper's heuristic filters. Each rejection carries a reason name, counted in the funnel.

Instruction filters (released `bootstrap_instructions.py`): length in words, words a text-only
model cannot act on, "Write a program" (the model appended it to many tasks), a first character
that is punctuation or not ASCII, and an item cut off by the token limit. Instance filters
(released `prepare_for_finetuning.py`): empty outputs, outputs equal to their input, fields ending
with a colon (unfinished), exact duplicates, and tasks whose same input got different outputs.
The ROUGE-L near-duplicate filter lives in `rouge/`, with its own reason `too_similar`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from .parsing import Parsed, ParsedInstance

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
    "beyond_quota",  # valid, but the round that reached --num-instructions had more
)
INSTANCE_REASONS = (
    "truncated",
    "empty_output",
    "output_equals_input",
    "unfinished",
    "duplicate",
    "conflicting_outputs",
)


def instruction_rejection(item: Parsed) -> str | None:
    """The first filter `item` fails, or None if it passes them all (ROUGE-L aside)."""
    text = item.text
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
