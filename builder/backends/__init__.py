"""Backends turn batches of prompts into completions; `load_backend` picks one from the options."""

from __future__ import annotations

import os

from ..config import ConfigError, PipelineConfig
from .base import Backend, Completion, SamplingParams


def load_backend(config: PipelineConfig) -> Backend:
    """Build the backend named by `config.backend` (imports stay lazy: torch is slow to load)."""
    if config.backend == "transformers":
        from .transformers import TransformersBackend

        return TransformersBackend(config.model, batch_size=config.batch_size)
    if not config.endpoint:
        raise ConfigError(f"--backend {config.backend} needs at least one --endpoint URL")
    from .endpoints import RetryPolicy
    from .urls import API_KEY_ENV

    common = {
        "api_key": os.environ.get(API_KEY_ENV) or None,
        "model": config.model,
        "max_concurrency": config.max_concurrency,
        "timeout": config.request_timeout,
        "retry": RetryPolicy(max_attempts=config.max_attempts),
    }
    if config.backend == "tgi":
        from .tgi import TGIBackend

        return TGIBackend(config.endpoint, **common)
    if config.backend == "openai":
        from .openai import OpenAIBackend

        return OpenAIBackend(config.endpoint, chat=config.chat, **common)
    raise ConfigError(f"unknown backend {config.backend!r}: choose transformers, tgi or openai")


__all__ = ["Backend", "Completion", "SamplingParams", "load_backend"]
