"""How `generate --help` lays out its options: short groups, the most used option first in each.

The options themselves (flag, default, help) are declared once, in config.py's `PipelineConfig`
and generate.py's `GenerateArguments`; this module only says where each one is shown. The
README's option table follows the same groups in the same order, and a test holds both to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptionGroup:
    """A titled block of `--help`: `names` are dataclass fields (or `config`, for --config),
    in the order shown."""

    title: str
    description: str | None
    names: tuple[str, ...]


GENERATE_OPTIONS = (
    OptionGroup(
        "model and backend",
        "Which model writes the data, and how it is reached.",
        (
            "model",
            "backend",
            "endpoint",
            "chat",
            "structured",
            "max_concurrency",
            "request_timeout",
            "max_attempts",
        ),
    ),
    OptionGroup(
        "in-process model (--backend transformers)",
        "Where and how the model is loaded; the card records what they resolved to.",
        ("device", "dtype", "device_map", "model_revision"),
    ),
    OptionGroup(
        "what to generate",
        "How much, from which seed tasks, with which prompts.",
        (
            "num_instructions",
            "seeds",
            "classification_only",
            "max_instances_per_task",
            "patience",
            "prompt_templates",
            "num_prompt_instructions",
            "num_machine_instructions",
            "sft_include_seed_tasks",
        ),
    ),
    OptionGroup(
        "sampling",
        "Decoding of instruction lists (instances are decoded greedily) and the random seed.",
        (
            "seed",
            "temperature",
            "top_p",
            "max_new_tokens",
            "instance_max_new_tokens",
            "repetition_penalty",
            "presence_penalty",
            "instance_presence_penalty",
        ),
    ),
    OptionGroup(
        "filters",
        "Which new instructions are kept (the paper's heuristics, then ROUGE-L).",
        ("rouge_threshold", "salvage_truncated_lists", "keep_instruction_case", "provenance_pool"),
    ),
    OptionGroup(
        "output and runs",
        "Where the data goes, and how a run is resumed, grown or pushed.",
        (
            "output",
            "resume",
            "overwrite",
            "push_to_hub",
            "config",
            "resume_from",
            "repair_log",
            "batch_size",
            "sample_lag",
        ),
    ),
    OptionGroup("logging", "How much a run prints.", ("quiet", "verbose")),
)
