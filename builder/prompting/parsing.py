"""Model text -> instructions, classification answers and (input, output) instances.

Every rule here is the released Self-Instruct code's (`bootstrap_instructions.py`,
`generate_instances.py`, `prepare_for_finetuning.py`): a numbered-list continuation is split on
"\\n<number>. ", instance completions on "Example <n>" (input-first) or "Class label:"
(output-first). Items the paper drops because their completion stopped at the token limit are
not dropped silently: they come back marked `truncated`, so the funnel can count them.

A chat model's answer (`--chat`) is read preamble-proof instead, with the `chat_` functions: only
list items are instructions ("9.", "9)", "**9.**", "Task 9:", "- ", "* "), lines before the first
item and after a blank line are its talk around the list ("Sure! Here are more tasks:", "I hope
this helps!") and are dropped; instance answers lose their leading preamble lines. The paper's
functions are not touched by any of this, so a raw-completion run decides as the paper does.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from self_instruct.schemas import CLASSIFICATION, INSTRUCTION_LIST, INVALID_JSON, ResponseSchema

_LIST_ITEM = re.compile(r"\n\d+\s?\. ")
_WHITESPACE = re.compile(r"\s+")
_EXAMPLE = re.compile(r"Example\s?\d*\.?")
_OUTPUT_FIELD = re.compile(r"Output\s*\d*\s*:")
_INPUT_FIELD = re.compile(r"Input\s*\d*\s*:")
_LEADING_INPUT_FIELD = re.compile(r"^Input\s*\d*\s*:")
_CLASS_LABEL = "Class label:"
# A chat answer's list item: "9. ", "9) ", "**9.** ", "Task 9: ", "**Task 9:** ", "- ", "* ", "• "
_NUMBERED_ITEM = re.compile(r"^\s*(?:\*\*|__)?(?:task\s*)?\d+\s*[.):](?:\*\*|__)?\s+", re.I)
_BULLET_ITEM = re.compile(r"^\s*[-*•+]\s+")
# A bold label before the task ("**Poem:** Write...", "**Poem**: Write..."), not bold words
_BOLD_LABEL = re.compile(r"^\s*(?:\*\*|__)[^*_:]{1,60}(?::(?:\*\*|__)|(?:\*\*|__):)(?=\s)")
_EMPHASIS = re.compile(r"\*\*|__")
# The opening of a chat model's talk around its answer.
PREAMBLE_START = (
    r"(?:sure|certainly|of course|okay|ok|absolutely|great|alright|here (?:is|are)|"
    r"below (?:is|are)|these are|i(?:'d| would) be happy|i can|let me|as an ai)\b"
)
_LEADING_TALK = re.compile(
    rf"^\s*(?:{PREAMBLE_START}|task\s*:)|^[^:\n]*\b(?:examples|tasks)\b[^:\n]*:\s*$", re.IGNORECASE
)  # "Sure, ...", or a line that announces "... examples:" / "... tasks:"
# The paper's `is_classification` test, after strip(): these three spellings and nothing else.
CLASSIFICATION_YES = ("Yes", "yes", "YES")


@dataclass(frozen=True)
class ParsedItem:
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


def _items(
    pieces: list[str], hit_length_limit: bool, keep_case: bool, salvage_truncated: bool
) -> list[ParsedItem]:
    """Normalised, non-empty pieces as `Parsed` items, the truncation rule applied."""
    pieces = [p for p in map(_normalise, pieces) if p]
    items = []
    for i, piece in enumerate(pieces):
        checked = piece.capitalize()
        stored = piece[:1].upper() + piece[1:] if keep_case else checked
        cut = hit_length_limit and (i == len(pieces) - 1 or not salvage_truncated)
        items.append(ParsedItem(stored, truncated=cut, checked=checked))
    return items


def split_instructions(
    completion: str,
    hit_length_limit: bool,
    *,
    keep_case: bool = False,
    salvage_truncated: bool = False,
) -> list[ParsedItem]:
    """Split the continuation of a numbered list (the prompt ends with "9.") into instructions.

    The paper drops every item of a completion that hit the token limit; `salvage_truncated` is
    Stanford Alpaca's rule instead (only the last, cut-off item goes). `keep_case` stores
    "Write an SQL query" where the paper's `str.capitalize()` stores "Write an sql query"; the
    filters decide on the capitalised text either way.
    """
    return _items(_LIST_ITEM.split(completion), hit_length_limit, keep_case, salvage_truncated)


def chat_list_items(answer: str) -> list[str]:
    """The list items of a chat answer, markers and markdown emphasis taken off.

    A numbered list is the answer's list; bullets are its items only when nothing is numbered
    (under a numbered task they are the model answering it). An item runs on over the lines that
    follow it until a blank line, a bullet or the next item; any other text (before the first
    item, after a blank line) is not an instruction.
    """
    numbered = any(_NUMBERED_ITEM.match(line) for line in answer.splitlines())
    marker = _NUMBERED_ITEM if numbered else _BULLET_ITEM
    items: list[str] = []
    open_item = False
    for line in answer.splitlines():
        if match := marker.match(line):
            items.append(_BOLD_LABEL.sub("", line[match.end() :]))
            open_item = True
        elif not line.strip() or _BULLET_ITEM.match(line):
            open_item = False
        elif open_item:
            items[-1] += " " + line
    return [_EMPHASIS.sub("", item).strip() for item in items]


def chat_split_instructions(
    answer: str,
    hit_length_limit: bool,
    *,
    keep_case: bool = False,
    salvage_truncated: bool = False,
) -> list[ParsedItem]:
    """`split_instructions` for a chat answer: its list items only, the same truncation rule."""
    return _items(chat_list_items(answer), hit_length_limit, keep_case, salvage_truncated)


def instructions_from_json(completion: str, *, keep_case: bool = False) -> list[ParsedItem] | None:
    """The `tasks` of a `--structured` answer, as `split_instructions` gives a list's items;
    None if the answer is not JSON fitting `INSTRUCTION_LIST`. An answer that fits is complete,
    so none of its items is cut off, whatever the finish reason."""
    data = INSTRUCTION_LIST.validate(completion)
    if data is None:
        return None
    return _items(data["tasks"], False, keep_case, salvage_truncated=False)


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


def chat_is_classification(answer: str) -> bool:
    """A chat model says "Yes." or "**Yes**, it is": its first word decides."""
    words = _EMPHASIS.sub("", answer).split()
    return bool(words) and words[0].strip(string.punctuation).lower() == "yes"


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


def drop_preamble(answer: str) -> str:
    """A chat answer without its leading talk ("Sure! Here are some examples:") or the task
    repeated ("Task: ...")."""
    lines = answer.splitlines()
    while lines and (not lines[0].strip() or _LEADING_TALK.match(lines[0])):
        lines.pop(0)
    return "\n".join(lines)


def parse_instances(
    completion: str, is_classification: bool, hit_length_limit: bool, *, chat: bool = False
) -> list[ParsedInstance]:
    """Instances of one task in generation order; the last is `truncated` after a length stop.
    `chat`: the completion is a chat answer, read after its preamble."""
    if chat:
        completion = drop_preamble(completion)
    pairs = _output_first(completion) if is_classification else _input_first(completion)
    return [
        ParsedInstance(i, o, truncated=hit_length_limit and n == len(pairs) - 1)
        for n, (i, o) in enumerate(pairs)
    ]
