"""Backends turn batches of prompts into completions; `load_backend` picks one from the options."""

from __future__ import annotations

import os
from dataclasses import replace

from ..config import CPU_BATCH_SIZE, GPU_BATCH_SIZE, ConfigError, PipelineConfig
from .base import Backend, Completion, SamplingParams


def resolve_defaults(config: PipelineConfig) -> PipelineConfig:
    """`config` with 'auto' device and dtype and an unset batch size made concrete for this
    machine: they shape the data (batching, numerics), so the run identity records what ran."""
    if config.backend != "transformers":
        return replace(config, batch_size=config.batch_size or CPU_BATCH_SIZE)
    from .transformers import best_device, best_dtype

    device = best_device(config.device)
    batch_size = config.batch_size or (CPU_BATCH_SIZE if device == "cpu" else GPU_BATCH_SIZE)
    return replace(
        config, device=device, dtype=best_dtype(config.dtype, device), batch_size=batch_size
    )


def load_backend(config: PipelineConfig) -> Backend:
    """Build the backend named by `config.backend` (imports stay lazy: torch is slow to load)."""
    config = resolve_defaults(config)
    if config.backend == "transformers":
        from .transformers import TransformersBackend

        return TransformersBackend(
            config.model,
            batch_size=config.batch_size,
            revision=config.model_revision,
            device=config.device,
            dtype=config.dtype,
            device_map=config.device_map,
        )
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


__all__ = ["Backend", "Completion", "SamplingParams", "load_backend", "resolve_defaults"]
