"""One rule for a test that needs an optional extra of setup.cfg: without it, the test skips and
says which extra is missing and the command that installs it.

`make test` installs every extra, so these skips are for a venv set up by hand.
"""

from __future__ import annotations

import importlib.util

import pytest

# extra -> the module of it that the tests need
EXTRAS = {
    "structured": "llguidance",  # --structured decoding in the transformers backend
    "analysis": "spacy",  # the card's verb-noun figure
    "serve": "llama_cpp",  # a real OpenAI-compatible server (llama-cpp-python)
}


def missing(extra: str) -> str | None:
    """Why a test of `extra` cannot run here, or None when the extra is installed."""
    module = EXTRAS[extra]
    if importlib.util.find_spec(module) is not None:
        return None
    return f'needs the optional "{extra}" extra ({module}): pip install -e ".[{extra}]"'


def needs_extra(extra: str) -> pytest.MarkDecorator:
    """Mark a test to skip, saying why, when `extra` is not installed."""
    reason = missing(extra)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def require_extra(extra: str) -> None:
    """In a fixture or test body: skip, saying why, unless `extra` is installed."""
    if reason := missing(extra):
        pytest.skip(reason)
