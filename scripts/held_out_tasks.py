"""The tasks scripts/evaluate_model.py asks models to do, and the answers they give.

A task is an instruction, its input and a reference output, read from a paper-schema .jsonl
(the first instance of each task) or a dataset's rows; a model answers it greedily through the
plainest `sft` template, so that its answers and their scores are the same on every run. Answers
are written in the fields that `--predictions` reads back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from self_instruct.config import BUNDLED_SEEDS

if TYPE_CHECKING:
    from evaluate_model import EvaluationArguments


@dataclass(frozen=True)
class Task:
    """One held-out task: the answer a model gives is scored against `target`."""

    instruction: str
    input: str
    target: str


def load_tasks(args: EvaluationArguments) -> list[Task]:
    """Tasks from a paper-schema .jsonl (first instance of each) or a dataset's rows."""
    from self_instruct.prompting.seeds import BUNDLED_SEEDS_PATH

    source = BUNDLED_SEEDS_PATH if args.tasks == BUNDLED_SEEDS else Path(args.tasks)
    records = read_jsonl(source) if source.suffix == ".jsonl" else _read_dataset(args)
    tasks = [_to_task(record, f"{args.tasks} row {i}") for i, record in enumerate(records, 1)]
    return tasks[: args.num_tasks]


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _read_dataset(args: EvaluationArguments) -> list[dict]:
    from datasets import load_dataset

    rows = load_dataset(
        args.tasks, args.tasks_config, split=args.tasks_split, revision=args.tasks_revision
    )
    return rows.to_list()


def _to_task(record: dict, where: str) -> Task:
    example = record["instances"][0] if record.get("instances") else record
    if "instruction" not in record or "output" not in example:
        raise ValueError(
            f"{where} has fields {sorted(record)}: a task needs instruction, input and output, "
            "or instruction and instances [{input, output}] (the paper's schema)."
        )
    return Task(record["instruction"], example.get("input") or "", example["output"])


def chat_prompts(tokenizer, tasks: list[Task]) -> list[str]:
    """The user message of the plainest `sft` template, in the model's chat format if it has
    one (a base model without a chat template gets the message as it is)."""
    from self_instruct.prompting.prompts import load_templates

    templates = load_templates()
    messages = [templates.sft_user_message(t.instruction, t.input, 0) for t in tasks]
    if tokenizer.chat_template is None:
        return messages
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
        )
        for message in messages
    ]


def generate_answers(model: str, tasks: list[Task], args: EvaluationArguments) -> list[str]:
    """Greedy answers, batched; greedy so that two runs of one model score the same."""
    from self_instruct.backends.base import SamplingParams
    from self_instruct.backends.transformers import TransformersBackend

    backend = TransformersBackend(model, batch_size=args.batch_size)
    try:
        prompts = chat_prompts(backend.tokenizer, tasks)
        completions = backend.generate(prompts, SamplingParams(args.max_new_tokens))
    finally:
        backend.close()
    return [c.text.strip() for c in completions]


def write_predictions(folder: Path, model: str, tasks: list[Task], answers: list[str]) -> Path:
    """<folder>/<model folder name>.jsonl, in the fields that --predictions reads by default."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(model).name}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for task, answer in zip(tasks, answers, strict=True):
            out.write(json.dumps(asdict(task) | {"response": answer}, ensure_ascii=False) + "\n")
    return path
