"""The small real run the slow tests share (conftest's `generated_dataset`), declared once.

It is the same run on every machine, with or without ../shared beside the repository: our own
seed tasks, never the paper's. The embedded 135M model writes a parseable instance for one task
in four to two in three (of 8 tasks, 5 kept one here with seed 7, 2 with seeds 42 and 1), and
which ones can change with the machine or a library's version; so a run that kept none goes on,
from where it stopped, to a larger quota: every machine ends with instances, at the smallest
size that gives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from self_instruct.config import PipelineConfig

if TYPE_CHECKING:
    from self_instruct.backends.base import Backend
    from self_instruct.run import RunResult

SIZES = (8, 16, 32)  # instructions asked, one round of 8 prompts after another


def shared_run_config(num_instructions: int = SIZES[0]) -> PipelineConfig:
    return PipelineConfig(
        seeds="bundled",
        seed=7,
        num_instructions=num_instructions,
        batch_size=8,  # one generate() batch per step
        max_new_tokens=96,  # the model writes one short instruction per prompt
        instance_max_new_tokens=160,  # 64 stopped nearly every answer before its Output field
        # Generated rows only: the SFT test trains on every row at once (the seed tasks' own
        # rows are tested by test_paper_rules.py and test_paper_decisions_e2e.py).
        sft_include_seed_tasks=False,
    )


def generate_shared_run(folder: Path, backend: Backend) -> tuple[PipelineConfig, RunResult]:
    """Run into `folder` (a new one) until it keeps an instance, at most `SIZES[-1]` asked."""
    from self_instruct.export.folder import prepare_output
    from self_instruct.run import NothingToExportError

    prepare_output(folder, resume=False, overwrite=False)
    for size in SIZES[:-1]:
        try:  # a larger size resumes the run log of the one before
            return size_run(size, folder, backend)
        except NothingToExportError:
            continue
    return size_run(SIZES[-1], folder, backend)


def size_run(size: int, folder: Path, backend: Backend) -> tuple[PipelineConfig, RunResult]:
    from self_instruct.run import run_to_folder

    config = shared_run_config(size)
    return config, run_to_folder(config, folder, command="pytest", backend=backend)
