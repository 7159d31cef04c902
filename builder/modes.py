"""The prompting mode of a run: how each step's prompt is written and its answer read.

The pipeline runs the same three steps in every mode (instruction lists, the classification
question, instances); a mode only decides the prompt that a backend gets and how its answer
becomes items. "completion" is the paper's: raw text for a base model to continue, read by the
released code's rules. "chat" writes messages for a chat model and reads its answers
preamble-proof (see `parsing.py`). The filters, ROUGE-L and the run log are the same in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .backends.base import Completion, Prompt
from .config import PipelineConfig
from .parsing import (
    Parsed,
    ParsedInstance,
    chat_is_classification,
    chat_split_instructions,
    parse_instances,
    parse_is_classification,
    split_instructions,
)
from .prompts import PromptTemplates


@dataclass(frozen=True)
class CompletionMode:
    """The paper's prompts and parsing rules, unchanged."""

    templates: PromptTemplates
    classification_only: bool = False
    keep_case: bool = False
    salvage_truncated: bool = False

    @property
    def instruction_stop(self) -> tuple[str, ...]:
        return self.templates.instruction_stop

    def instruction_prompt(self, examples: Sequence[str]) -> Prompt:
        return self.templates.instruction_prompt(examples, self.classification_only)

    def instructions(self, completion: Completion) -> list[Parsed]:
        return split_instructions(
            completion.text,
            completion.finish_reason == "length",
            keep_case=self.keep_case,
            salvage_truncated=self.salvage_truncated,
        )

    def classification_prompt(self, instruction: str) -> Prompt:
        return self.templates.classification_prompt(instruction)

    def is_classification(self, completion: Completion) -> bool:
        return parse_is_classification(completion.text)

    def instance_prompt(self, instruction: str, is_classification: bool) -> Prompt:
        return self.templates.instance_prompt(instruction, is_classification)

    def instance_stop(self, max_instances: int) -> tuple[str, ...]:
        return self.templates.instance_stop_for(max_instances)

    def instances(self, completion: Completion, is_classification: bool) -> list[ParsedInstance]:
        length = completion.finish_reason == "length"
        return parse_instances(completion.text, is_classification, length)


class ChatMode(CompletionMode):
    """Messages for a chat model (the templates' `chat` section); answers read preamble-proof."""

    @property
    def instruction_stop(self) -> tuple[str, ...]:
        return self.templates.chat_instruction_stop

    def instruction_prompt(self, examples: Sequence[str]) -> Prompt:
        return self.templates.chat_instruction_prompt(examples, self.classification_only)

    def instructions(self, completion: Completion) -> list[Parsed]:
        return chat_split_instructions(
            completion.text,
            completion.finish_reason == "length",
            keep_case=self.keep_case,
            salvage_truncated=self.salvage_truncated,
        )

    def classification_prompt(self, instruction: str) -> Prompt:
        return self.templates.chat_classification_prompt(instruction)

    def is_classification(self, completion: Completion) -> bool:
        return chat_is_classification(completion.text)

    def instance_prompt(self, instruction: str, is_classification: bool) -> Prompt:
        return self.templates.chat_instance_prompt(instruction, is_classification)

    def instance_stop(self, max_instances: int) -> tuple[str, ...]:
        return self.templates.instance_stop_for(max_instances, chat=True)

    def instances(self, completion: Completion, is_classification: bool) -> list[ParsedInstance]:
        length = completion.finish_reason == "length"
        return parse_instances(completion.text, is_classification, length, chat=True)


MODES: dict[str, type[CompletionMode]] = {"completion": CompletionMode, "chat": ChatMode}
# What the dataset card says of each mode, for a reader who never saw the options.
DESCRIPTIONS = {
    "completion": "the paper's: raw text prompts that the model continues",
    "chat": "chat messages written for a chat model; only list items of its answers were read",
}


def prompting_mode(config: PipelineConfig, templates: PromptTemplates) -> CompletionMode:
    """The mode `config.prompting_mode` names, over `templates`."""
    return MODES[config.prompting_mode](
        templates,
        classification_only=config.classification_only,
        keep_case=config.keep_instruction_case,
        salvage_truncated=config.salvage_truncated_lists,
    )
