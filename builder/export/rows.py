"""Run-log records -> the rows of the three dataset configurations, with their schemas.

`instructions`: one row per accepted machine-generated instruction, with its ROUGE-L provenance.
`instances`: one row per kept (input, output) instance, the paper's released-data layout.
`sft`: conversational prompt-completion rows that TRL's SFTTrainer trains on as they are
(it masks the prompt from the loss by itself). They are built as the paper's
`prepare_for_finetuning.py` builds its training data: the seed tasks' own instances join the
generated ones, half of all inputs (seeded) lose a lone field name and their blank lines, and a
row equal to an earlier one of its task is left out.

`run_rows` makes the three configurations' rows in one pass over a run's records, the seed tasks'
own `sft` rows last: an export writes them all (`write_rows`), the `datasets` builder keeps its
own configuration's, so both give the same rows from one replay of the run log.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value
from datasets.arrow_writer import ArrowWriter

from self_instruct.config import PipelineConfig
from self_instruct.layout import CONFIG_NAMES
from self_instruct.prompting.prompts import PromptTemplates
from self_instruct.prompting.seeds import SeedTask

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


_FIELD_NAME = re.compile(r"(\w+):")


def fine_tuning_input(text: str, rng: random.Random) -> str:
    """The paper's input step at fine-tuning time, for half of all instances.

    With one distinct field name before a colon ("Sentence: ..."), everything up to the first
    colon goes; blank lines become single newlines. The other half keep their input as written.
    """
    if rng.random() >= 0.5:
        return text
    if len(set(_FIELD_NAME.findall(text))) == 1:
        text = text.split(":", 1)[1]
    return text.strip().replace("\n\n", "\n")


def sft_rows(
    rows: Iterable[dict[str, Any]], seed: int, templates: PromptTemplates
) -> Iterator[dict[str, Any]]:
    """Chat rows of one task's instances; random choices are drawn from (seed, instance id)."""
    seen: set[tuple[str, str]] = set()
    for row in rows:
        rng = random.Random(f"{seed}:sft:{row['id']}")
        input_text = fine_tuning_input(row["input"], rng)
        template = rng.randrange(len(templates.sft_family(input_text)))
        user = templates.sft_user_message(row["instruction"], input_text, template)
        output = row["output"].strip()
        if (user, output) in seen:  # the paper drops repeated (prompt, completion) pairs
            continue
        seen.add((user, output))
        yield {
            "id": f"{row['id']}-sft",
            "instance_id": row["id"],
            "template": template,
            "prompt": [{"role": "user", "content": user}],
            "completion": [{"role": "assistant", "content": output}],
        }


def seed_sft_rows(
    seeds: Iterable[SeedTask], seed: int, templates: PromptTemplates
) -> Iterator[dict[str, Any]]:
    """`sft` rows of the seed tasks' own instances (the paper's `include_seed_tasks` option)."""
    for task in seeds:
        rows = (
            {
                "id": f"{task.id}-{k}",
                "instruction": task.instruction,
                "input": instance.input,
                "output": instance.output,
            }
            for k, instance in enumerate(task.instances)
        )
        yield from sft_rows(rows, seed, templates)


def rows_of(
    config_name: str, record: dict[str, Any], seed: int, templates: PromptTemplates
) -> Iterator[dict[str, Any]]:
    """The rows that one accepted instruction record contributes to a configuration."""
    if config_name == "instructions":
        return instruction_rows(record)
    if config_name == "instances":
        return instance_rows(record)
    if config_name == "sft":
        return sft_rows(instance_rows(record), seed, templates)
    raise ValueError(f"unknown configuration {config_name!r}: choose one of {CONFIG_NAMES}")


def run_rows(
    records: Iterable[dict[str, Any]],
    seed_tasks: Iterable[SeedTask],
    config: PipelineConfig,
    templates: PromptTemplates,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(configuration, row)` for every row of a run, in one pass over its accepted records: each
    record's rows of the three configurations, then the `sft` rows of the seed tasks (the paper's
    `include_seed_tasks`, unless `config.sft_include_seed_tasks` is off)."""
    for record in records:
        for name in CONFIG_NAMES:
            for row in rows_of(name, record, config.seed, templates):
                yield name, row
    if config.sft_include_seed_tasks:
        for row in seed_sft_rows(seed_tasks, config.seed, templates):
            yield "sft", row


def write_rows(rows: Iterable[tuple[str, dict[str, Any]]], folder: Path) -> dict[str, Dataset]:
    """Write `run_rows` to one Arrow file per configuration in `folder` (on disk, not in memory:
    a run may be larger than memory); each configuration's rows, memory-mapped from its file."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.arrow" for name in CONFIG_NAMES}
    with contextlib.ExitStack() as open_files:  # closed on any error, after `finalize` too
        writers = {
            name: open_files.enter_context(ArrowWriter(features=FEATURES[name], path=str(path)))
            for name, path in paths.items()
        }
        for name, row in rows:
            writers[name].write(row)
        for writer in writers.values():
            writer.finalize()
    return {name: Dataset.from_file(str(path)) for name, path in paths.items()}
