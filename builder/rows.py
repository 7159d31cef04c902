"""Run-log records -> the rows of the three dataset configurations, with their schemas.

`instructions`: one row per accepted machine-generated instruction, with its ROUGE-L provenance.
`instances`: one row per kept (input, output) instance, the paper's released-data layout.
`sft`: conversational prompt-completion rows that TRL's SFTTrainer trains on as they are
(it masks the prompt from the loss by itself).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from datasets import Features, List, Value

from .prompts import SFT_TEMPLATES_WITH_INPUT, SFT_TEMPLATES_WITHOUT_INPUT, sft_user_message

CONFIG_NAMES = ("instructions", "instances", "sft")

_MESSAGE = {"role": Value("string"), "content": Value("string")}

FEATURES = {
    "instructions": Features(
        {
            "id": Value("string"),
            "instruction": Value("string"),
            "is_classification": Value("bool"),
            "max_rouge_l": Value("float64"),
            "mean_rouge_l": Value("float64"),
            "most_similar": List({"instruction": Value("string"), "rouge_l": Value("float64")}),
            "num_instances": Value("int32"),
            "round": Value("int32"),
            "prompt_instructions": List(Value("string")),
        }
    ),
    "instances": Features(
        {
            "id": Value("string"),
            "instruction_id": Value("string"),
            "instruction": Value("string"),
            "is_classification": Value("bool"),
            "input": Value("string"),
            "output": Value("string"),
        }
    ),
    "sft": Features(
        {
            "id": Value("string"),
            "instance_id": Value("string"),
            "template": Value("int32"),
            "prompt": List(_MESSAGE),
            "completion": List(_MESSAGE),
        }
    ),
}


def instruction_rows(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The `instructions` row of one accepted instruction record."""
    yield {
        "id": record["id"],
        "instruction": record["instruction"],
        "is_classification": record["is_classification"],
        "max_rouge_l": record["max_rouge_l"],
        "mean_rouge_l": record["mean_rouge_l"],
        "most_similar": record["most_similar"],
        "num_instances": len(record["instances"]),
        "round": record["round"],
        "prompt_instructions": record["prompt_instructions"],
    }


def instance_rows(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One `instances` row per kept instance, the paper's released-data layout."""
    for k, instance in enumerate(record["instances"]):
        yield {
            "id": f"{record['id']}-{k}",
            "instruction_id": record["id"],
            "instruction": record["instruction"],
            "is_classification": record["is_classification"],
            "input": instance["input"],
            "output": instance["output"],
        }


def sft_rows(record: dict[str, Any], seed: int) -> Iterator[dict[str, Any]]:
    """Chat rows; the user-message layout is drawn per instance from (seed, instance id)."""
    for row in instance_rows(record):
        template = random.Random(f"{seed}:sft:{row['id']}").randrange(len(templates_for(row)))
        user = sft_user_message(row["instruction"], row["input"], template)
        yield {
            "id": f"{row['id']}-sft",
            "instance_id": row["id"],
            "template": template,
            "prompt": [{"role": "user", "content": user}],
            "completion": [{"role": "assistant", "content": row["output"]}],
        }


def templates_for(row: dict[str, Any]) -> tuple[str, ...]:
    return SFT_TEMPLATES_WITH_INPUT if row["input"] else SFT_TEMPLATES_WITHOUT_INPUT


def rows_of(config_name: str, record: dict[str, Any], seed: int) -> Iterator[dict[str, Any]]:
    """The rows that one accepted instruction record contributes to a configuration."""
    if config_name == "instructions":
        return instruction_rows(record)
    if config_name == "instances":
        return instance_rows(record)
    if config_name == "sft":
        return sft_rows(record, seed)
    raise ValueError(f"unknown configuration {config_name!r}: choose one of {CONFIG_NAMES}")
