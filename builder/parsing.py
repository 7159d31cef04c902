"""Model text -> instructions, classification answers and (input, output) instances.

The parsers follow the released Self-Instruct code: a numbered-list continuation is split on
"\\n<number>. ", instance completions on "Example <n>" (input-first) or "Class label:"
(output-first). When a completion stopped at the token limit its last item is probably cut off;
it is kept here, marked `truncated`, so that the filters can count it instead of losing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LIST_ITEM = re.compile(r"\n\d+\s?\. ")
_EXAMPLE = re.compile(r"Example\s?\d+\s?:?")
_OUTPUT_FIELD = re.compile(r"Output\s*\d*\s*:")
_INPUT_FIELD = re.compile(r"Input\s*\d*\s*:")
_CLASS_LABEL = "Class label:"


@dataclass(frozen=True)
class Parsed:
    """One item cut out of a completion; `truncated` when the completion ran out of tokens."""

    text: str
    truncated: bool = False


@dataclass(frozen=True)
class ParsedInstance:
    input: str
    output: str
    truncated: bool = False


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _capitalise_first(text: str) -> str:
    # The released code calls str.capitalize(), which also lower-cases the rest ("SQL" -> "sql").
    return text[:1].upper() + text[1:]


def split_instructions(completion: str, hit_length_limit: bool) -> list[Parsed]:
    """Split the continuation of a numbered list (the prompt ends with "9.") into instructions."""
    pieces = [_capitalise_first(_normalise(p)) for p in _LIST_ITEM.split("\n" + completion)]
    pieces = [p for p in pieces if p]
    return [
        Parsed(p, truncated=hit_length_limit and i == len(pieces) - 1) for i, p in enumerate(pieces)
    ]


def parse_is_classification(completion: str) -> bool:
    """The few-shot prompt ends with "Is it classification?"; anything starting with yes is yes."""
    return completion.strip().lower().startswith("yes")


def _input_output(text: str) -> tuple[str, str]:
    """Split "Input: ... Output: ..." (the input part may carry another field name, or none)."""
    if _OUTPUT_FIELD.search(text):
        input_text, output = _OUTPUT_FIELD.split(text, maxsplit=2)[:2]
    else:
        input_text, output = "", text
    output = _INPUT_FIELD.split(output)[0]  # a second pair run on after the first
    input_text = _INPUT_FIELD.sub("", input_text.strip(), count=1)
    return input_text.strip(), output.strip()


def _input_first(completion: str) -> list[tuple[str, str]]:
    examples = _EXAMPLE.split(completion) if _EXAMPLE.search(completion) else [completion]
    return [_input_output(e) for e in examples if e.strip()]


def _output_first(completion: str) -> list[tuple[str, str]]:
    if _CLASS_LABEL not in completion:
        return []
    pairs = []
    for block in completion.split(_CLASS_LABEL)[1:]:
        label, _, rest = block.strip().partition("\n")
        pairs.append((_INPUT_FIELD.sub("", rest.strip(), count=1).strip(), label.strip()))
    return pairs


def parse_instances(
    completion: str, is_classification: bool, hit_length_limit: bool
) -> list[ParsedInstance]:
    """Instances of one task: (input, output) pairs in generation order."""
    pairs = _output_first(completion) if is_classification else _input_first(completion)
    return [
        ParsedInstance(i, o, truncated=hit_length_limit and n == len(pairs) - 1)
        for n, (i, o) in enumerate(pairs)
    ]
