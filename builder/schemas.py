"""JSON schemas that constrain each step's answer in `--structured` runs.

The paper's prompts leave the model free to write anything after "9."; a schema leaves it only
the answer's shape: a list of new task texts, a yes/no, or a task's examples. The servers get the
schema in their own field (OpenAI-compatible `response_format`, TGI's `grammar`), the
transformers backend applies it while decoding (`backends/constrained.py`), and every answer is
validated again when it is parsed: a server that ignores the schema answers text that fails
validation, and that answer is rejected as `invalid_json`, never kept.

Every root is an object (a named field holding the list): OpenAI's structured outputs accept
no other root, and the field name tells a model that ignores the schema what is asked.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from typing import Any

from self_instruct.errors import ConfigError

# The paper shows 8 instructions and stops the list at "16": at most 7 new ones (9. to 15.).
MAX_NEW_INSTRUCTIONS = 7
CLASSIFICATION_ANSWERS = ("Yes", "No")
INVALID_JSON = "invalid_json"  # the rejection reason of an answer that fails its schema


@dataclass(frozen=True)
class ResponseSchema:
    """A named JSON schema, stored as JSON text so that sampling params stay hashable."""

    name: str
    text: str

    @property
    def schema(self) -> dict[str, Any]:
        return json.loads(self.text)

    def validate(self, answer: str) -> Any | None:
        """The decoded answer if it is JSON that fits the schema, else None."""
        try:
            data = json.loads(answer)
        except ValueError:
            return None
        return data if _validator(self.text).is_valid(data) else None


def _schema(name: str, field: str, value: dict[str, Any]) -> ResponseSchema:
    schema = {
        "type": "object",
        "properties": {field: value},
        "required": [field],
        "additionalProperties": False,
    }
    # Key order is kept: a model writes the fields in the schema's order (the label first in an
    # output-first example).
    return ResponseSchema(name, json.dumps(schema))


def _strings_object(*keys: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: {"type": "string"} for key in keys},
        "required": list(keys),
        "additionalProperties": False,
    }


# A task reads as a sentence: a capital letter, a word, a space, a lower-case letter. Without it
# a small model fills the list with "", ", " or code (SmolLM2-135M did on every prompt we tried).
TASK_PATTERN = "^[A-Z][a-z]* [a-z].*$"
INSTRUCTION_LIST = _schema(
    "instruction_list",
    "tasks",
    {
        "type": "array",
        "items": {"type": "string", "pattern": TASK_PATTERN},
        "minItems": 1,
        "maxItems": MAX_NEW_INSTRUCTIONS,
    },
)
CLASSIFICATION = _schema("classification", "answer", {"enum": list(CLASSIFICATION_ANSWERS)})


def instances_schema(is_classification: bool, max_instances: int) -> ResponseSchema:
    """Input-first tasks get (input, output) pairs; classification tasks, output-first, get
    (label, input) pairs, as the paper's two instance prompts ask."""
    keys = ("label", "input") if is_classification else ("input", "output")
    examples = {
        "type": "array",
        "items": _strings_object(*keys),
        "minItems": 1,
        "maxItems": max_instances,
    }
    name = "classification_instances" if is_classification else "instances"
    return _schema(name, "examples", examples)


@functools.cache
def _validator(text: str):
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(text))


def check_structured_installed(backend: str) -> None:
    """Fail before any request when `--structured` cannot work, saying what to install: every
    answer is validated (jsonschema), the transformers backend also decodes under the schema."""
    modules = ["jsonschema"] + (["llguidance"] if backend == "transformers" else [])
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"--structured needs {' and '.join(missing)}: run "
            "`pip install 'self-instruct[structured]'`"
        )
