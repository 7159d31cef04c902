"""Model text -> instructions, classification answers and (input, output) instances.

Every rule here is the released Self-Instruct code's (`bootstrap_instructions.py`,
`generate_instances.py`, `prepare_for_finetuning.py`): a numbered-list continuation is split on
"\\n<number>. ", instance completions on "Example <n>" (input-first) or "Class label:"
(output-first). Items the paper drops because their completion stopped at the token limit are
not dropped silently: they come back marked `truncated`, so the funnel can count them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schemas import CLASSIFICATION, INSTRUCTION_LIST, INVALID_JSON, ResponseSchema

_LIST_ITEM = re.compile(r"\n\d+\s?\. ")
_WHITESPACE = re.compile(r"\s+")
_EXAMPLE = re.compile(r"Example\s?\d*\.?")
_OUTPUT_FIELD = re.compile(r"Output\s*\d*\s*:")
_INPUT_FIELD = re.compile(r"Input\s*\d*\s*:")
_LEADING_INPUT_FIELD = re.compile(r"^Input\s*\d*\s*:")
_CLASS_LABEL = "Class label:"
# The paper's `is_classification` test, after strip(): these three spellings and nothing else.
CLASSIFICATION_YES = ("Yes", "yes", "YES")


@dataclass(frozen=True)
class Parsed:
    """One item cut out of a completion.

    `checked` is the text the paper's filters look at (its `str.capitalize()` form); `text` is what
    is stored, the same unless the case of the rest was kept. `truncated`: the completion that
    held it ran out of tokens, which the paper's code treats as a rejection.
    """

    text: str
    truncated: bool = False
    checked: str | None = None

    @property
    def filtered_text(self) -> str:
        return self.text if self.checked is None else self.checked


@dataclass(frozen=True)
class ParsedInstance:
    input: str
    output: str
    truncated: bool = False


def _normalise(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def split_instructions(
    completion: str,
    hit_length_limit: bool,
    *,
    keep_case: bool = False,
    salvage_truncated: bool = False,
) -> list[Parsed]:
    """Split the continuation of a numbered list (the prompt ends with "9.") into instructions.

    The paper drops every item of a completion that hit the token limit; `salvage_truncated` is
    Stanford Alpaca's rule instead (only the last, cut-off item goes). `keep_case` stores
    "Write an SQL query" where the paper's `str.capitalize()` stores "Write an sql query"; the
    filters decide on the capitalised text either way.
    """
    return _instructions(
        _LIST_ITEM.split(completion), hit_length_limit, keep_case, salvage_truncated
    )


def _instructions(
    texts: list[str], hit_length_limit: bool, keep_case: bool, salvage_truncated: bool
) -> list[Parsed]:
    """Normalised non-empty items, in the paper's case, marked `truncated` as the rule says."""
    pieces = [_normalise(p) for p in texts]
    pieces = [p for p in pieces if p]
    items = []
    for i, piece in enumerate(pieces):
        checked = piece.capitalize()
        stored = piece[:1].upper() + piece[1:] if keep_case else checked
        cut = hit_length_limit and (i == len(pieces) - 1 or not salvage_truncated)
        items.append(Parsed(stored, truncated=cut, checked=checked))
    return items


def instructions_from_json(completion: str, *, keep_case: bool = False) -> list[Parsed] | None:
    """The `tasks` of a `--structured` answer, as `split_instructions` gives a list's items;
    None if the answer is not JSON fitting `INSTRUCTION_LIST`. An answer that fits is complete,
    so none of its items is cut off, whatever the finish reason."""
    data = INSTRUCTION_LIST.validate(completion)
    if data is None:
        return None
    return _instructions(data["tasks"], False, keep_case, salvage_truncated=False)


def invalid_answer_reason(hit_length_limit: bool) -> str:
    """Why an answer that fails its schema is rejected: cut off by the token limit (as the paper
    counts it), or not the JSON asked for (a server that ignored the schema)."""
    return "truncated" if hit_length_limit else INVALID_JSON


def is_classification_from_json(completion: str) -> bool | None:
    """A `--structured` classification answer: True for "Yes", False for "No", None otherwise."""
    data = CLASSIFICATION.validate(completion)
    return None if data is None else data["answer"] == "Yes"


def instances_from_json(
    completion: str, schema: ResponseSchema, is_classification: bool
) -> list[ParsedInstance] | None:
    """The `examples` of a `--structured` instance answer (label/input pairs for classification
    tasks, input/output pairs otherwise); None if it does not fit `schema`."""
    data = schema.validate(completion)
    if data is None:
        return None
    pairs = [
        (e["input"], e["label"]) if is_classification else (e["input"], e["output"])
        for e in data["examples"]
    ]
    return [ParsedInstance(i.strip(), o.strip()) for i, o in pairs]


def parse_is_classification(completion: str) -> bool:
    """The few-shot prompt ends with "Is it classification?": exactly Yes, yes or YES is yes."""
    return completion.strip() in CLASSIFICATION_YES


def _input_output(text: str) -> tuple[str, str]:
    """Split "Input: ... Output: ..."; the input keeps any other field name ("List: ...")."""
    if _OUTPUT_FIELD.search(text):
        pieces = _OUTPUT_FIELD.split(text)
        input_text, output = pieces[0].strip(), pieces[1].strip()
    else:
        input_text, output = "", text.strip()
    output = _INPUT_FIELD.split(output)[0].strip()  # a second pair run on after the first
    return _LEADING_INPUT_FIELD.sub("", input_text).strip(), output


def _input_first(completion: str) -> list[tuple[str, str]]:
    """Examples split on "Example <n>"; without any, one instance if there is an Output field."""
    text = completion.strip()
    if _EXAMPLE.search(text):
        examples = [e.strip() for e in _EXAMPLE.split(text)]
        return [_input_output(e) for e in examples if e]
    if _OUTPUT_FIELD.search(text):
        return [_input_output(text)]
    return []  # neither marker: the paper keeps nothing


def _output_first(completion: str) -> list[tuple[str, str]]:
    """(input, label) pairs; the input stays as written, field name included."""
    if _CLASS_LABEL not in completion:
        return []
    pairs = []
    for block in completion.split(_CLASS_LABEL)[1:]:
        label, _, rest = block.strip().partition("\n")
        pairs.append((rest.strip(), label.strip()))
    return pairs


def parse_instances(
    completion: str, is_classification: bool, hit_length_limit: bool
) -> list[ParsedInstance]:
    """Instances of one task in generation order; the last is `truncated` after a length stop."""
    pairs = _output_first(completion) if is_classification else _input_first(completion)
    return [
        ParsedInstance(i, o, truncated=hit_length_limit and n == len(pairs) - 1)
        for n, (i, o) in enumerate(pairs)
    ]
