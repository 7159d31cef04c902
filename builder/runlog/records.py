"""The run log's record kinds, defined once: each one's `type` tag and fields.

A record is the JSON object of one log line, and it stays a plain `dict` in memory (what
`json.loads` gives back, what the builder turns into rows): these `TypedDict`s name the fields
every writer and reader of the log agree on, and the tags are the only spelling of each kind.

    run          line 1: the options that decide the data (`RunHeader`)
    instruction  an accepted instruction, with its instances (`Instruction`)
    rejected     an instruction a filter dropped, with the reason (`Rejected`)
    judgment     an audit's verdict on one instance (`Judgment`, audit logs only)
    round        the marker that closes a round, with its counts and usage (`RoundMarker`); it
                 seals the round too (its record count and hash, see runlog/check.py)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

if TYPE_CHECKING:
    from self_instruct.rouge.index import FilterDecision

RUN = "run"
INSTRUCTION = "instruction"
REJECTED = "rejected"
JUDGMENT = "judgment"
ROUND = "round"
# What a round may hold: a generation run's instructions and rejections, an audit's judgments.
ROUND_RECORDS = frozenset({INSTRUCTION, REJECTED, JUDGMENT, ROUND})
# The backend's counters each round marker carries (the round's share, summed on resume).
USAGE_KEYS = ("requests", "failed_requests", "prompt_tokens", "completion_tokens", "seconds")
# Characters of a rejected text kept in the run log: enough to see why it was rejected. A server
# that answers 10 MB would otherwise grow the log by as much per rejected item.
MAX_REJECTED_CHARS = 2_000
# The keys each kind of round record must have, and those of the objects in its lists: what the
# readers index (summary, replay, rows). Written out because `TypedDict.__required_keys__` is
# wrong under `from __future__ import annotations` on Python 3.11 (every key looks required).
REQUIRED_KEYS = {
    INSTRUCTION: (
        "id",
        "round",
        "instruction",
        "max_rouge_l",
        "mean_rouge_l",
        "most_similar",
        "prompt_instructions",
        "is_classification",
        "instances",
        "rejected_instances",
    ),
    REJECTED: ("round", "text", "reason"),
    JUDGMENT: ("key", "answers", "reasons", "failure", "raw", "error"),
}
LIST_KEYS = {
    "instances": ("input", "output"),
    "rejected_instances": ("input", "output", "reason"),
    "most_similar": ("instruction", "rouge_l"),
}


class RunHeader(TypedDict):
    type: Literal["run"]
    identity: dict[str, Any]  # compared with the options given on every reopening


class Similar(TypedDict):
    instruction: str
    rouge_l: float


class Instance(TypedDict):
    input: str
    output: str


class RejectedInstance(Instance):
    reason: str  # a name from filters.INSTANCE_REASONS


class InstanceFields(TypedDict):
    """What an instruction's instance answer gives its record (generation/steps.py)."""

    is_classification: bool
    instances: list[Instance]
    rejected_instances: list[RejectedInstance]


class Instruction(TypedDict):
    type: Literal["instruction"]
    id: str  # r<round>-<number in round>: names the rows of every configuration
    round: int
    prompt: NotRequired[int]  # the global index of the prompt that proposed it (the scheduler)
    instruction: str
    max_rouge_l: float
    mean_rouge_l: float
    most_similar: list[Similar]
    prompt_instructions: list[str]  # the examples its prompt showed
    is_classification: bool
    instances: list[Instance]
    rejected_instances: list[RejectedInstance]
    imported_from: NotRequired[str]  # --resume-from: a row of an earlier version, not generated


class Rejected(TypedDict):
    type: Literal["rejected"]
    round: int
    text: str  # cut to MAX_REJECTED_CHARS
    reason: str  # a name from filters.INSTRUCTION_REASONS
    max_rouge_l: NotRequired[float]  # too_similar only: of what
    most_similar: NotRequired[list[Similar]]


class Judgment(TypedDict):
    type: Literal["judgment"]
    round: NotRequired[int]  # absent from audit logs written before rounds were sealed
    key: str  # audit.item_key of the instance judged
    answers: list[bool] | None
    reasons: list[str] | None
    failure: str | None
    raw: str
    error: str


class RoundMarker(TypedDict):
    """Closes a round; a generation round's counts and usage, or an audit batch's counts.

    `records` and `sha256` seal it (runlog/check.py); a marker that `--repair-log` wrote in place of
    rounds it moved aside has no records, and says which rounds (`round` to `last_round`) and
    where they went (`moved_to`).
    """

    type: Literal["round"]
    round: int
    records: NotRequired[int]  # the record lines of the round, before its marker
    sha256: NotRequired[str]  # of the round's bytes (absent from logs of earlier versions)
    last_round: NotRequired[int]
    moved_to: NotRequired[str]
    accepted: NotRequired[int]
    rejected: NotRequired[int]
    imported: NotRequired[int]  # the round that holds an earlier version's rows
    requests: NotRequired[int]
    failed_requests: NotRequired[int]
    prompt_tokens: NotRequired[int | None]  # None: a server answered without counting them
    completion_tokens: NotRequired[int | None]
    seconds: NotRequired[float]
    asked: NotRequired[int]  # audit logs
    judged: NotRequired[int]


Record = RunHeader | Instruction | Rejected | Judgment | RoundMarker


# -- one constructor per kind: the only places a `type` tag is written ---------------------


def run_header(identity: dict[str, Any]) -> RunHeader:
    """Line 1 of a log: the options that decide its data."""
    return {"type": RUN, "identity": identity}


def instruction(
    *,
    id_: str,
    round_: int,
    prompt: int,
    text: str,
    decision: FilterDecision,
    examples: list[str],
    instances: InstanceFields,
) -> Instruction:
    """A generated instruction, whole: what the filter decided of it, then its instances."""
    return _instruction(
        {
            "id": id_,
            "round": round_,
            "prompt": prompt,  # what a resume's sampling and admission read back
            "instruction": text,
            "max_rouge_l": decision.max_score,
            "mean_rouge_l": decision.mean_score,
            "most_similar": similar(decision),
            "prompt_instructions": examples,
            **instances,
        }
    )


def imported_instruction(
    fields: dict[str, Any], instances: list[Instance], source: str
) -> Instruction:
    """A row of an earlier version as an accepted instruction (runlog/previous.py): its
    `fields` in the order the log keeps them, its instances, where it came from."""
    return _instruction(
        {**fields, "instances": instances, "rejected_instances": [], "imported_from": source}
    )


def _instruction(fields: dict[str, Any]) -> Instruction:
    return {"type": INSTRUCTION, **fields}


def rejection(
    round_: int, text: str, reason: str, decision: FilterDecision | None = None
) -> Rejected:
    """The record of a rejected instruction (or of a whole answer rejected at once)."""
    near: dict[str, Any] = {}
    if decision is not None:  # a near-duplicate: say of what
        near = {"max_rouge_l": decision.max_score, "most_similar": similar(decision)[:1]}
    return {"type": REJECTED, "round": round_, "text": cut(text), "reason": reason, **near}


def judgment(
    *,
    key: str,
    round_: int,
    answers: list[bool] | None,
    reasons: list[str] | None,
    failure: str | None,
    raw: str,
    error: str,
) -> Judgment:
    """An audit's verdict on the instance `key` (audit/review.py)."""
    return {
        "type": JUDGMENT,
        "round": round_,
        "key": key,
        "answers": answers,
        "reasons": reasons,
        "failure": failure,
        "raw": raw,
        "error": error,
    }


def round_marker(fields: dict[str, Any]) -> RoundMarker:
    """The marker that closes a round: `fields` (its `round` first), the tag last, as the log
    writes it (runlog/check.py adds the seal before the tag)."""
    return {**fields, "type": ROUND}


def cut(text: str) -> str:
    """A rejected text as the run log keeps it: at most `MAX_REJECTED_CHARS`, and says so."""
    if len(text) <= MAX_REJECTED_CHARS:
        return text
    return f"{text[:MAX_REJECTED_CHARS]} [... {len(text) - MAX_REJECTED_CHARS} more characters]"


def similar(decision: FilterDecision) -> list[Similar]:
    """In the `instructions` row schema, and as JSON gives it back on replay."""
    return [{"instruction": text, "rouge_l": score} for text, score in decision.most_similar]
