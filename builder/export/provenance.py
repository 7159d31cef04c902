"""What a dataset card says about the run that made it, safe to publish.

A card goes public with `push`, so it names the inputs by what identifies them (a seed file's
name, hash and count; a model id and revision) and never by where they were on this machine
(absolute paths) or how servers were reached (endpoint URLs can carry internal host names or
`user:pass@host` credentials). The run folder keeps the full options for `--resume`.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from self_instruct.about import __version__
from self_instruct.config import PATH_OPTIONS, PipelineConfig
from self_instruct.prompting.filters import INSTANCE_REASONS, INSTRUCTION_REASONS
from self_instruct.prompting.modes import DESCRIPTIONS
from self_instruct.prompting.prompts import load_templates
from self_instruct.prompting.seeds import load_seeds, seeds_fingerprint
from self_instruct.utils.public_names import public_command, public_name

UNKNOWN = "unknown"  # a usage counter no server gave (a 200 without `usage`)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def describe_model(config: PipelineConfig) -> tuple[str, str | None]:
    """(model id, revision) as the backend the options name describes its model, unloaded."""
    from self_instruct.backends import backend_class

    return backend_class(config.backend).describe_model(config)


def _public_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Counters as integers, seconds rounded to whole seconds; a token count a server did not
    give says so."""
    return {key: UNKNOWN if value is None else round(value) for key, value in usage.items()}


def provenance(config: PipelineConfig, command: str, usage: dict[str, Any]) -> dict[str, Any]:
    """Everything a reader needs to trust and reproduce the data (no tokens, URLs or paths)."""
    seeds = load_seeds(config.seeds)
    options = asdict(config)
    options.pop("endpoint")  # may embed credentials
    options |= {name: public_name(options[name]) for name in PATH_OPTIONS if options[name]}
    model, revision = describe_model(config)
    return {
        "package_version": __version__,
        "git_commit": _git_commit(),
        "model": model,
        "model_revision": revision,
        "backend": config.backend,
        "prompting_mode": config.prompting_mode,
        "prompting_mode_description": DESCRIPTIONS[config.prompting_mode],
        "generation": options,
        "seeds": {
            "source": public_name(config.seeds),
            "sha256": seeds_fingerprint(seeds),
            "count": len(seeds),
        },
        "prompt_templates_sha256": load_templates(config.prompt_templates).fingerprint(),
        "rouge_threshold": config.rouge_threshold,
        "provenance_pool": config.provenance_pool,
        "filters": [*INSTRUCTION_REASONS, *INSTANCE_REASONS],
        "random_seed": config.seed,
        "command": public_command(command),
        "usage": _public_usage(usage),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
