"""The paper's Table 1 statistics, for the dataset card and for `self-instruct stats DATA`.

One computation serves both so that the numbers a card shows are the numbers the command prints,
for our own output, for the paper's seed tasks, or for anyone else's data in either schema.
Lengths are whitespace-separated words, as the paper counts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from datasets import Dataset, get_dataset_config_names, load_dataset

from self_instruct.config import BUNDLED_SEEDS
from self_instruct.layout import RUN_DIR
from self_instruct.prompting.seeds import SeedTask, load_seeds
from self_instruct.runlog.log import check_log

OUTPUT_CONFIGS = ("instructions", "instances")


@dataclass(frozen=True)
class Table1Stats:
    """One column of the paper's Table 1. A mean is None when there is nothing to average."""

    instructions: int
    classification: int
    non_classification: int
    instances: int
    empty_input_instances: int
    mean_instruction_words: float | None
    mean_input_words: float | None  # over non-empty inputs only, as in the paper
    mean_output_words: float | None  # over all instances


TABLE1_LABELS = {
    "instructions": "# of instructions",
    "classification": "- # of classification instructions",
    "non_classification": "- # of non-classification instructions",
    "instances": "# of instances",
    "empty_input_instances": "- # of instances with empty input",
    "mean_instruction_words": "ave. instruction length (in words)",
    "mean_input_words": "ave. non-empty input length (in words)",
    "mean_output_words": "ave. output length (in words)",
}


def word_counts(texts: Iterable[str]) -> list[int]:
    """Whitespace-separated word counts, the paper's length unit."""
    return [len(text.split()) for text in texts]


def _mean(values: Sequence[int]) -> float | None:
    return fmean(values) if values else None


def compute_stats(instructions: Dataset, instances: Dataset) -> Table1Stats:
    """Table 1 for `instructions` (columns instruction, is_classification) and their
    `instances` (columns input, output)."""
    is_classification = list(instructions["is_classification"])
    inputs = list(instances["input"])
    non_empty_inputs = [text for text in inputs if text.strip()]
    return Table1Stats(
        instructions=len(is_classification),
        classification=sum(is_classification),
        non_classification=len(is_classification) - sum(is_classification),
        instances=len(inputs),
        empty_input_instances=len(inputs) - len(non_empty_inputs),
        mean_instruction_words=_mean(word_counts(instructions["instruction"])),
        mean_input_words=_mean(word_counts(non_empty_inputs)),
        mean_output_words=_mean(word_counts(instances["output"])),
    )


def _cell(value: int | float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def format_stats_table(columns: dict[str, Table1Stats]) -> str:
    """A Markdown table with one column per named dataset; it reads as well in a terminal."""
    header = ["statistic", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * len(columns)]
    for field, label in TABLE1_LABELS.items():
        cells = [_cell(getattr(stats, field)) for stats in columns.values()]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def seed_stats_input(seeds: Sequence[SeedTask]) -> tuple[Dataset, Dataset]:
    """Seed tasks -> (instructions, instances) as compute_stats reads them."""
    instructions = Dataset.from_dict(
        {
            "instruction": [task.instruction for task in seeds],
            "is_classification": [task.is_classification for task in seeds],
        }
    )
    pairs = [pair for task in seeds for pair in task.instances]
    instances = Dataset.from_dict(
        {"input": [p.input for p in pairs], "output": [p.output for p in pairs]}
    )
    return instructions, instances


def _has_output_configs(data: str) -> bool:
    if Path(data).is_file() or data == BUNDLED_SEEDS:
        return False
    return set(OUTPUT_CONFIGS) <= set(get_dataset_config_names(data))


def load_stats_input(data: str) -> tuple[Dataset, Dataset]:
    """(instructions, instances) from a local folder or Hub id with our output configurations,
    or from anything `load_seeds` reads (a seed-schema .jsonl, folder or Hub id, 'bundled')."""
    if not _has_output_configs(data):
        return seed_stats_input(load_seeds(data))
    if (Path(data) / RUN_DIR).is_dir():  # our own folder: its data must not hide a damaged log
        check_log(Path(data) / RUN_DIR)
    instructions, instances = (load_dataset(data, name, split="train") for name in OUTPUT_CONFIGS)
    return instructions, instances


def stats_main(data: str) -> str:
    """What `self-instruct stats DATA` prints: Table 1 for DATA."""
    stats = compute_stats(*load_stats_input(data))
    return f"Statistics of {data} (the paper's Table 1):\n\n" + format_stats_table({"value": stats})
