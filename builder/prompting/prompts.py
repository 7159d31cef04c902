"""The paper's four prompt formats, filled from a template file (ours by default).

A run sends four kinds of prompts (paper section 2.2-2.3, released code `bootstrap_instructions.py`,
`identify_clf_or_not.py`, `generate_instances.py`): a numbered list of instructions for the model
to continue, a yes/no few-shot prompt that asks whether a task is classification, and two instance
prompts -- input-first for most tasks, output-first (class label, then an input) for
classification tasks, so that generated inputs are not all biased towards one label.

Every text (headers, demonstrations, stop sequences, `sft` layouts) lives in a YAML file,
`templates/default.yaml` in the package; `--prompt-templates FILE` swaps in another (JSON is YAML
too). Only the joins are code, and they are the paper's: the few-shot prefix, then the query with
the stripped instruction in it.

With `--chat` the same steps go to a chat model as messages (the file's `chat` section): a system
message saying to answer in the format asked for, and a user message that asks for the list (the
in-context instructions numbered in it) or wraps the paper's own classification and instance
prompt. The model's chat template, not ours, makes them one prompt.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from self_instruct.backends.base import ChatPrompt, Message
from self_instruct.config import DEFAULT_TEMPLATES
from self_instruct.errors import ConfigError

DEFAULT_TEMPLATES_PATH = Path(__file__).parent / "templates" / "default.yaml"
_WHITESPACE = re.compile(r"\s+")
# The instance stop sequences name the first example past the cap ("Example 6" for 5).
NEXT_EXAMPLE = "{next_example}"


class TemplateError(ConfigError):
    """A template file that cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class PromptTemplates:
    """Every prompt text of a run. Field names are the YAML keys, `section.key` flattened."""

    instruction_header: str
    classification_instruction_header: str
    instruction_stop: tuple[str, ...]
    classification_prefix: str
    classification_query: str
    classification_stop: tuple[str, ...]
    input_first_prefix: str
    output_first_prefix: str
    instance_query: str
    instance_stop: tuple[str, ...]
    sft_with_input: tuple[str, ...]
    sft_without_input: tuple[str, ...]
    structured_instruction_query: str
    structured_classification_query: str
    structured_input_first_query: str
    structured_output_first_query: str
    chat_system: str
    chat_instructions: str
    chat_classification_instructions: str
    chat_instruction_stop: tuple[str, ...]
    chat_classification: str
    chat_instances: str
    chat_instance_stop: tuple[str, ...]

    def instruction_prompt(
        self, instructions: Sequence[str], classification: bool = False, structured: bool = False
    ) -> str:
        """Number the in-context instructions and leave the next number open for the model;
        `structured` shows them as the JSON the answer is to be, then asks for new ones."""
        header = (
            self.classification_instruction_header if classification else self.instruction_header
        )
        if structured:
            shown = json.dumps({"tasks": list(map(_one_line, instructions))}, ensure_ascii=False)
            return f"{header}{shown}\n{self.structured_instruction_query}"
        return header + _numbered(instructions) + f"{len(instructions) + 1}."

    def chat_instruction_prompt(
        self, instructions: Sequence[str], classification: bool = False, structured: bool = False
    ) -> ChatPrompt:
        """Ask a chat model to continue the numbered list, which sits in the user message;
        `structured`: the JSON-showing prompt is the user message."""
        if structured:
            return self._chat(self.instruction_prompt(instructions, classification, structured))
        text = self.chat_classification_instructions if classification else self.chat_instructions
        tasks = _numbered(instructions).rstrip("\n")
        return self._chat(
            text.replace("{tasks}", tasks).replace("{next}", str(len(instructions) + 1))
        )

    def chat_classification_prompt(self, instruction: str, structured: bool = False) -> ChatPrompt:
        prompt = self.classification_prompt(instruction, structured)
        return self._chat(self.chat_classification.replace("{prompt}", prompt))

    def chat_instance_prompt(
        self, instruction: str, is_classification: bool, structured: bool = False
    ) -> ChatPrompt:
        prompt = self.instance_prompt(instruction, is_classification, structured)
        return self._chat(self.chat_instances.replace("{prompt}", prompt))

    def _chat(self, user: str) -> ChatPrompt:
        return ChatPrompt((Message("system", self.chat_system), Message("user", user)))

    def classification_prompt(self, instruction: str, structured: bool = False) -> str:
        """Few-shot yes/no: is this a classification task with a finite label set?"""
        query = self.structured_classification_query if structured else self.classification_query
        return self.classification_prefix + query.replace("{instruction}", instruction.strip())

    def instance_prompt(
        self, instruction: str, is_classification: bool, structured: bool = False
    ) -> str:
        """Output-first for classification tasks, input-first otherwise (paper section 2.3)."""
        prefix = self.output_first_prefix if is_classification else self.input_first_prefix
        if not structured:
            query = self.instance_query
        elif is_classification:
            query = self.structured_output_first_query
        else:
            query = self.structured_input_first_query
        return prefix + query.replace("{instruction}", instruction.strip())

    def instance_stop_for(self, max_instances: int, chat: bool = False) -> tuple[str, ...]:
        stop = self.chat_instance_stop if chat else self.instance_stop
        return tuple(s.replace(NEXT_EXAMPLE, str(max_instances + 1)) for s in stop)

    def sft_user_message(self, instruction: str, input_text: str, template: int) -> str:
        """Fill layout number `template` of the with-input or without-input family."""
        family = self.sft_family(input_text)
        layout = family[template % len(family)]
        return layout.replace("{instruction}", instruction.strip()).replace(
            "{input}", input_text.strip()
        )

    def sft_family(self, input_text: str) -> tuple[str, ...]:
        return self.sft_with_input if input_text.strip() else self.sft_without_input

    def fingerprint(self) -> str:
        """Hash of every text, so that a card and a run log say exactly which prompts were used."""
        canonical = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


_SECTIONS: dict[str, dict[str, str]] = {
    "instructions": {
        "header": "instruction_header",
        "classification_header": "classification_instruction_header",
        "stop": "instruction_stop",
    },
    "classification": {
        "prefix": "classification_prefix",
        "query": "classification_query",
        "stop": "classification_stop",
    },
    "instances": {
        "input_first_prefix": "input_first_prefix",
        "output_first_prefix": "output_first_prefix",
        "query": "instance_query",
        "stop": "instance_stop",
    },
    "sft": {"with_input": "sft_with_input", "without_input": "sft_without_input"},
    "structured": {
        "instruction_query": "structured_instruction_query",
        "classification_query": "structured_classification_query",
        "input_first_query": "structured_input_first_query",
        "output_first_query": "structured_output_first_query",
    },
    "chat": {
        "system": "chat_system",
        "instructions": "chat_instructions",
        "classification_instructions": "chat_classification_instructions",
        "instruction_stop": "chat_instruction_stop",
        "classification": "chat_classification",
        "instances": "chat_instances",
        "instance_stop": "chat_instance_stop",
    },
}
# Sections a file may leave out (the paper's converted templates have neither, nor files older
# than --chat and --structured): ours are used.
_OPTIONAL_SECTIONS = ("chat", "structured")

# The texts something is filled into, and what: one without its placeholder would drop it.
_FILLED = {
    "classification_query": "{instruction}",
    "instance_query": "{instruction}",
    "sft_with_input": "{instruction}",
    "sft_without_input": "{instruction}",
    "chat_instructions": "{tasks}",
    "chat_classification_instructions": "{tasks}",
    "chat_classification": "{prompt}",
    "chat_instances": "{prompt}",
    "structured_classification_query": "{instruction}",
    "structured_input_first_query": "{instruction}",
    "structured_output_first_query": "{instruction}",
}


def _numbered(instructions: Sequence[str]) -> str:
    """ "1. <instr>\n2. <instr>\n...", each on one line, without a trailing colon."""
    return "".join(f"{i}. {_one_line(text)}\n" for i, text in enumerate(instructions, 1))


def _one_line(instruction: str) -> str:
    """An in-context instruction as a prompt shows it: one line, without a trailing colon."""
    return _WHITESPACE.sub(" ", instruction).strip().rstrip(":")


def load_templates(source: str = DEFAULT_TEMPLATES) -> PromptTemplates:
    """Read `source` ('default' for ours); raises `TemplateError` saying what to fix."""
    path = DEFAULT_TEMPLATES_PATH if source == DEFAULT_TEMPLATES else Path(source)
    data = _read(path)
    if isinstance(data, dict) and path != DEFAULT_TEMPLATES_PATH:
        defaults = _read(DEFAULT_TEMPLATES_PATH)
        data = {**{name: defaults[name] for name in _OPTIONAL_SECTIONS}, **data}
    return PromptTemplates(**_fields(path, data))


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise TemplateError(f"{path}: cannot read the prompt templates ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise TemplateError(f"{path}: not valid YAML or JSON ({err})") from err


def _fields(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: expected sections {', '.join(_SECTIONS)} at the top level")
    values: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        block = data.get(section)
        if not isinstance(block, dict):
            raise TemplateError(f"{path}: missing section '{section}' (see templates/default.yaml)")
        for key, name in keys.items():
            listed = name.endswith("_stop") or name.startswith("sft_")
            value = values[name] = _value(path, f"{section}.{key}", block.get(key), listed)
            placeholder = _FILLED.get(name)
            if placeholder and not all(placeholder in t for t in _texts(value)):
                raise TemplateError(f"{path}: '{section}.{key}' must hold {placeholder}")
    return values


def _texts(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def _value(path: Path, key: str, value: Any, listed: bool) -> str | tuple[str, ...]:
    if not listed and isinstance(value, str):
        return value
    if listed and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    expected = "a non-empty list of texts" if listed else "a text"
    raise TemplateError(f"{path}: '{key}' must be {expected} (see templates/default.yaml)")
