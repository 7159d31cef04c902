"""Backends turn batches of prompts into completions; `load_backend` picks one from the options."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from self_instruct.backends.base import Backend, Completion, SamplingParams
from self_instruct.config import CPU_BATCH_SIZE, GPU_BATCH_SIZE, SAMPLE_LAG, PipelineConfig
from self_instruct.errors import ConfigError

BackendLoader = Callable[[PipelineConfig], Backend]  # the options -> the backend they name


def resolve_defaults(config: PipelineConfig) -> PipelineConfig:
    """`config` with 'auto' device and dtype and an unset batch size and sample lag made concrete
    for this machine: they shape the data (batching, numerics, sampling), so the run identity
    records what ran."""
    if config.backend != "transformers":
        batch_size = config.batch_size or CPU_BATCH_SIZE
        lag = SAMPLE_LAG if config.sample_lag is None else config.sample_lag
        return replace(config, batch_size=batch_size, sample_lag=lag)
    from self_instruct.backends.transformers import best_device, best_dtype

    device = best_device(config.device)
    batch_size = config.batch_size or (CPU_BATCH_SIZE if device == "cpu" else GPU_BATCH_SIZE)
    lag = batch_size if config.sample_lag is None else config.sample_lag
    return replace(
        config,
        device=device,
        dtype=best_dtype(config.dtype, device),
        batch_size=batch_size,
        sample_lag=lag,
    )


def backend_class(name: str) -> type[Backend]:
    """The class behind `--backend NAME`, imported only when asked for (torch is slow to load)."""
    if name == "transformers":
        from self_instruct.backends.transformers import TransformersBackend

        return TransformersBackend
    if name == "tgi":
        from self_instruct.backends.tgi import TGIBackend

        return TGIBackend
    if name == "openai":
        from self_instruct.backends.openai import OpenAIBackend

        return OpenAIBackend
    raise ConfigError(f"unknown backend {name!r}: choose transformers, tgi or openai")


def load_backend(config: PipelineConfig) -> Backend:
    """Build the backend named by `config.backend`."""
    config = resolve_defaults(config)
    cls = backend_class(config.backend)
    if config.backend == "transformers":
        return cls(
            config.model,
            batch_size=config.batch_size,
            revision=config.model_revision,
            device=config.device,
            dtype=config.dtype,
            device_map=config.device_map,
        )
    if not config.endpoint:
        raise ConfigError(f"--backend {config.backend} needs at least one --endpoint URL")
    from self_instruct.backends.endpoints import RetryPolicy
    from self_instruct.utils.redaction import API_KEY_ENV

    common = {
        "api_key": os.environ.get(API_KEY_ENV) or None,
        "model": config.model,
        "max_concurrency": config.max_concurrency,
        "timeout": config.request_timeout,
        "retry": RetryPolicy(max_attempts=config.max_attempts),
    }
    if config.backend == "openai":
        return cls(config.endpoint, chat=config.chat, **common)
    return cls(config.endpoint, **common)


__all__ = [
    "Backend",
    "BackendLoader",
    "Completion",
    "backend_class",
    "SamplingParams",
    "load_backend",
    "resolve_defaults",
]
