"""One completion -> what its step asked for, in the paper's text mode or as `--structured` JSON.

The pipeline calls these and never looks at the mode itself: a numbered list or a `tasks` array
both become `Parsed` candidates, "Example 1 ... Output:" or an `examples` array both become
`ParsedInstance`s, and the filters and ROUGE-L that follow are the same. A structured answer that
fails its schema becomes one rejection (`invalid_json`, or `truncated` after the token limit).
"""

from __future__ import annotations

from .backends import Completion
from .config import PipelineConfig
from .parsing import (
    Parsed,
    ParsedInstance,
    instances_from_json,
    instructions_from_json,
    invalid_answer_reason,
    is_classification_from_json,
    parse_instances,
    parse_is_classification,
    split_instructions,
)
from .schemas import instances_schema

Rejected = tuple[ParsedInstance, str]


def _hit_limit(completion: Completion) -> bool:
    return completion.finish_reason == "length"


def instruction_items(completion: Completion, config: PipelineConfig) -> list[Parsed] | str:
    """The candidate instructions of one completion, or the reason the whole answer is
    rejected (a `--structured` answer that is not the JSON asked for)."""
    if config.structured:
        items = instructions_from_json(completion.text, keep_case=config.keep_instruction_case)
        return invalid_answer_reason(_hit_limit(completion)) if items is None else items
    return split_instructions(
        completion.text,
        _hit_limit(completion),
        keep_case=config.keep_instruction_case,
        salvage_truncated=config.salvage_truncated_lists,
    )


def instance_items(
    completion: Completion, is_classification: bool, config: PipelineConfig
) -> tuple[list[ParsedInstance], list[Rejected]]:
    """A task's parsed instances, and the answer itself as a rejection if it is not the
    `--structured` JSON asked for."""
    if not config.structured:
        return parse_instances(completion.text, is_classification, _hit_limit(completion)), []
    schema = instances_schema(is_classification, config.max_instances_per_task)
    parsed = instances_from_json(completion.text, schema, is_classification)
    if parsed is None:
        reason = invalid_answer_reason(_hit_limit(completion))
        return [], [(ParsedInstance("", completion.text), reason)]
    return parsed, []


def classification_answer(completion: Completion, structured: bool) -> bool:
    """Yes or no. A `--structured` answer that is not the JSON asked for counts as "No", as the
    paper counts every answer but "Yes"."""
    if structured:
        return bool(is_classification_from_json(completion.text))
    return parse_is_classification(completion.text)
