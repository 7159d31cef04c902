"""The prompting mode of a run: how each step's prompt is written and its answer read.

The pipeline runs the same three steps in every mode (instruction lists, the classification
question, instances); a mode only decides the request a backend gets (prompt, stop sequences,
schema) and how its answer becomes items. "completion" is the paper's: raw text for a base model
to continue, read by the released code's rules. "chat" writes messages for a chat model and reads
its answers preamble-proof (see `parsing.py`). `--structured` adds a JSON schema to each step,
in either mode: an answer that fails it is one rejection (`invalid_json`, or `truncated` after
the token limit), never kept. The filters, ROUGE-L and the run log are the same in all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from self_instruct.backends.base import Completion, Prompt
from self_instruct.config import PipelineConfig
from self_instruct.prompting.parsing import (
    ParsedInstance,
    ParsedItem,
    chat_is_classification,
    chat_split_instructions,
    instances_from_json,
    instructions_from_json,
    invalid_answer_reason,
    is_classification_from_json,
    parse_instances,
    parse_is_classification,
    split_instructions,
)
from self_instruct.prompting.prompts import PromptTemplates
from self_instruct.schemas import CLASSIFICATION, INSTRUCTION_LIST, ResponseSchema, instances_schema

InstanceRejection = tuple[ParsedInstance, str]
# Tokens for the yes/no answer: the paper's " Yes" needs 3, `{"answer": "Yes"}` about 8.
CLASSIFICATION_MAX_TOKENS = {False: 3, True: 16}


@dataclass(frozen=True)
class CompletionMode:
    """The paper's prompts and parsing rules, unchanged (unless `structured`)."""

    templates: PromptTemplates
    classification_only: bool = False
    keep_case: bool = False
    salvage_truncated: bool = False
    structured: bool = False
    chat = False

    # -- instruction lists ------------------------------------------------------------------

    def instruction_prompt(self, examples: Sequence[str]) -> Prompt:
        return self.templates.instruction_prompt(
            examples, self.classification_only, self.structured
        )

    @property
    def instruction_stop(self) -> tuple[str, ...]:
        return self._stop(self.templates.instruction_stop)

    @property
    def instruction_schema(self) -> ResponseSchema | None:
        return INSTRUCTION_LIST if self.structured else None

    def instructions(self, completion: Completion) -> list[ParsedItem] | str:
        """The candidate instructions of one answer, or the reason the whole answer is
        rejected (a `--structured` answer that is not the JSON asked for)."""
        if self.structured:
            items = instructions_from_json(completion.text, keep_case=self.keep_case)
            return invalid_answer_reason(_hit_limit(completion)) if items is None else items
        return self._split(
            completion.text,
            _hit_limit(completion),
            keep_case=self.keep_case,
            salvage_truncated=self.salvage_truncated,
        )

    def _split(self, text: str, hit_limit: bool, **rules: bool) -> list[ParsedItem]:
        return split_instructions(text, hit_limit, **rules)

    # -- the classification question --------------------------------------------------------

    def classification_prompt(self, instruction: str) -> Prompt:
        return self.templates.classification_prompt(instruction, self.structured)

    @property
    def classification_stop(self) -> tuple[str, ...]:
        return self._stop(self.templates.classification_stop)

    @property
    def classification_max_tokens(self) -> int:
        return CLASSIFICATION_MAX_TOKENS[self.structured]

    @property
    def classification_schema(self) -> ResponseSchema | None:
        return CLASSIFICATION if self.structured else None

    def is_classification(self, completion: Completion) -> bool:
        """Yes or no. A `--structured` answer that is not the JSON asked for counts as "No", as
        the paper counts every answer but "Yes"."""
        if self.structured:
            return bool(is_classification_from_json(completion.text))
        return parse_is_classification(completion.text)

    # -- instances --------------------------------------------------------------------------

    def instance_prompt(self, instruction: str, is_classification: bool) -> Prompt:
        return self.templates.instance_prompt(instruction, is_classification, self.structured)

    def instance_stop(self, max_instances: int) -> tuple[str, ...]:
        return self._stop(self.templates.instance_stop_for(max_instances, chat=self.chat))

    def instance_schema(self, is_classification: bool, max_instances: int) -> ResponseSchema | None:
        return instances_schema(is_classification, max_instances) if self.structured else None

    def instances(
        self, completion: Completion, is_classification: bool, max_instances: int
    ) -> tuple[list[ParsedInstance], list[InstanceRejection]]:
        """A task's parsed instances, and the answer itself as a rejection if it is not the
        `--structured` JSON asked for."""
        if not self.structured:
            parsed = parse_instances(
                completion.text, is_classification, _hit_limit(completion), chat=self.chat
            )
            return parsed, []
        schema = instances_schema(is_classification, max_instances)
        parsed = instances_from_json(completion.text, schema, is_classification)
        if parsed is None:
            reason = invalid_answer_reason(_hit_limit(completion))
            return [], [(ParsedInstance("", completion.text), reason)]
        return parsed, []

    def _stop(self, stop: tuple[str, ...]) -> tuple[str, ...]:
        """A step's stop sequences; none under a schema, whose answer ends where its JSON does
        (a stop such as the paper's "\\n\\n" could cut it short)."""
        return () if self.structured else stop


class ChatMode(CompletionMode):
    """Messages for a chat model (the templates' `chat` section); answers read preamble-proof."""

    chat = True

    def instruction_prompt(self, examples: Sequence[str]) -> Prompt:
        return self.templates.chat_instruction_prompt(
            examples, self.classification_only, self.structured
        )

    @property
    def instruction_stop(self) -> tuple[str, ...]:
        return self._stop(self.templates.chat_instruction_stop)

    def _split(self, text: str, hit_limit: bool, **rules: bool) -> list[ParsedItem]:
        return chat_split_instructions(text, hit_limit, **rules)

    def classification_prompt(self, instruction: str) -> Prompt:
        return self.templates.chat_classification_prompt(instruction, self.structured)

    def is_classification(self, completion: Completion) -> bool:
        if self.structured:
            return super().is_classification(completion)
        return chat_is_classification(completion.text)

    def instance_prompt(self, instruction: str, is_classification: bool) -> Prompt:
        return self.templates.chat_instance_prompt(instruction, is_classification, self.structured)


# What the dataset card says of each mode, for a reader who never saw the options.
DESCRIPTIONS = {
    "completion": "the paper's: raw text prompts that the model continues",
    "chat": "chat messages written for a chat model; only list items of its answers were read",
    "structured": "the paper's prompts asking for JSON, each answer constrained by a JSON schema",
    "chat+structured": "chat messages asking for JSON, each answer constrained by a JSON schema",
}


def _hit_limit(completion: Completion) -> bool:
    return completion.finish_reason == "length"


def prompting_mode(config: PipelineConfig, templates: PromptTemplates) -> CompletionMode:
    """The mode `config.prompting_mode` names, over `templates`."""
    mode = ChatMode if config.chat else CompletionMode
    return mode(
        templates,
        classification_only=config.classification_only,
        keep_case=config.keep_instruction_case,
        salvage_truncated=config.salvage_truncated_lists,
        structured=config.structured,
    )
