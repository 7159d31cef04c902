"""A finished run -> a folder laid out like a Hub dataset repository.

    DIR/README.md                      the card, whose YAML `configs:` name the data files
    DIR/data/<config>-<hash>.parquet   one file per configuration, named by its content hash
    DIR/plots/<figure>-<hash>.png      the card's figures
    DIR/.self-instruct/                the run log and the manifest (never uploaded); exports
                                       are staged here

File names carry their content hash because `datasets` keys its cache for a local folder on the
card's YAML alone (with fixed names, a folder rewritten by a later run would load the earlier
run's rows from the cache), and so that a new export never overwrites a file the current card
names (see `files.py`). Other files in DIR are never touched: only the manifest's are deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets

from .backends import resolve_defaults
from .builder import SelfInstruct
from .config import PipelineConfig
from .files import (
    OutputFolderError,
    content_named,
    read_manifest,
    remove_files,
    remove_run,
    write_manifest,
)
from .filters import INSTANCE_REASONS, INSTRUCTION_REASONS
from .provenance import provenance
from .rows import CONFIG_NAMES
from .runlog import RUN_DIR, Record, read_log, usage_from_log
from .seeds import load_seeds
from .verbosity import quiet_datasets

STAGE_DIR = f"{RUN_DIR}/export"  # an export is written here, then moved into place
NOTHING_PARSED = "nothing_parsed"  # an instance completion that held no instance at all
DATA_DIR = "data"
CARD = Path("README.md")


class NothingToExportError(ValueError):
    """A configuration has no rows (the run kept nothing): the message gives the funnel."""


@dataclass
class ExportResult:
    folder: Path
    data_files: dict[str, list[str]]
    num_rows: dict[str, int]
    funnel: dict[str, dict[str, Any]]


def prepare_output(folder: Path, *, resume: bool, overwrite: bool) -> list[str]:
    """Check the output folder is ours to write; return what `--overwrite` removed from it.

    Every check runs before anything is created or deleted, and `--overwrite` deletes only what
    earlier exports of a Self-Instruct run wrote there (its manifest) and the run directory: a
    mistyped --output, or a `.git` folder or notes beside the data, must never cost a file.
    """
    run_dir = folder / RUN_DIR
    removed: list[str] = []
    if folder.is_dir() and any(folder.iterdir()):
        if not run_dir.is_dir():
            raise OutputFolderError(
                f"{folder} holds other files, not a Self-Instruct run (--overwrite deletes only "
                "a run's files): choose an empty or new --output folder."
            )
        if overwrite:
            removed = remove_run(folder)
        elif not resume:
            raise OutputFolderError(
                f"{folder} already holds a Self-Instruct run. Pass --resume to continue it, "
                "--overwrite to replace it, or choose an empty --output folder."
            )
    elif resume:
        raise OutputFolderError(
            f"--resume: {folder} holds no run to resume ({run_dir} is missing); "
            "run the command without --resume to start one."
        )
    _make_writable_dir(folder)
    return removed


def _make_writable_dir(folder: Path) -> None:
    """Create `folder` and prove it takes a file: `os.access` says yes to root everywhere."""
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{folder} is a file, not a folder: choose another --output.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OutputFolderError(
            f"cannot write to {folder} ({err.strerror or err}): choose another --output folder."
        ) from None


def _write_parquet(ds: datasets.Dataset, folder: Path, name: str) -> str:
    """Write `folder/data/<name>-<content hash>.parquet`; return its path relative to `folder`."""
    (folder / DATA_DIR).mkdir(parents=True, exist_ok=True)
    path = folder / DATA_DIR / f"{name}.parquet"
    ds.to_parquet(str(path))
    return content_named(path).relative_to(folder).as_posix()


def _publish(stage: Path, folder: Path) -> None:
    """Move a staged export into `folder`: data and plots first, the card last, then stale files.

    The manifest lists the new files before any of them appears, so a kill at any point leaves
    every file the tool wrote on record. Each move is a rename of a content-named file, so at
    every moment the card names files that exist and hold what it records: a run killed
    mid-export leaves the previous export whole (and pushable), and its resume writes the new
    one. Stale files are only those of earlier exports, never other files in the folder.
    """
    staged = [p.relative_to(stage).as_posix() for p in sorted(stage.rglob("*")) if p.is_file()]
    previous = read_manifest(folder)
    write_manifest(folder, [*previous, *staged])
    for relative in staged:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        if relative != CARD.name:
            os.replace(stage / relative, folder / relative)
    os.replace(stage / CARD, folder / CARD)
    remove_files(folder, set(previous) - set(staged))
    write_manifest(folder, staged)
    shutil.rmtree(stage)


def funnel_from_log(
    records: Iterable[Record], limit: int | None = None
) -> dict[str, dict[str, Any]]:
    """Generated -> rejected by reason -> kept, for instructions and for instances.

    Accepted instructions past `limit` (the last round's surplus over --num-instructions) count
    as rejected `beyond_quota`; their instances are not counted. Rows imported from an earlier
    version (`--resume-from`) were not generated by this run: they are counted as `imported`,
    outside the funnel and the quota. An instruction whose instance completion parsed to no
    instance at all counts as one `nothing_parsed` instance rejection. One pass over `records`,
    so the log streams from disk however long the run.
    """
    rejected: Counter[str] = Counter()
    inst_rejected: Counter[str] = Counter()
    kept = inst_kept = imported = inst_imported = 0
    for record in records:
        if record["type"] == "rejected":
            rejected[record["reason"]] += 1
        elif record["type"] != "instruction":
            continue
        elif "imported_from" in record:
            imported += 1
            inst_imported += len(record["instances"])
        elif limit is not None and kept >= limit:
            rejected["beyond_quota"] += 1
        else:
            kept += 1
            inst_kept += len(record["instances"])
            inst_rejected.update(x["reason"] for x in record["rejected_instances"])
            if not record["instances"] and not record["rejected_instances"]:
                inst_rejected[NOTHING_PARSED] += 1

    def stage(reasons: tuple[str, ...], counts: Counter, kept: int, imported: int):
        return {
            "generated": kept + sum(counts.values()),
            "rejected": {k: counts[k] for k in reasons if counts[k]},
            "kept": kept,
            "imported": imported,
        }

    return {
        "instructions": stage(INSTRUCTION_REASONS, rejected, kept, imported),
        "instances": stage(
            (*INSTANCE_REASONS, NOTHING_PARSED), inst_rejected, inst_kept, inst_imported
        ),
    }


def _nothing_kept(name: str, run_dir: Path, config: PipelineConfig) -> str:
    """Why configuration `name` is empty, from the funnel, and what to try instead."""
    funnel = funnel_from_log(read_log(run_dir), config.num_instructions)
    stage = funnel["instructions" if name == "instructions" else "instances"]
    rejected = ", ".join(f"{k} {v}" for k, v in stage["rejected"].items()) or "none"
    return (
        f"the run kept no {'instruction' if name == 'instructions' else 'instance'} "
        f"({stage['generated']} generated, rejected: {rejected}), so there is no '{name}' data to "
        f"write; nothing was exported. The finished rounds stay in {run_dir}. Try a larger "
        "--model, other --seeds or a higher --rouge-threshold, in another --output folder (or "
        "with --overwrite)."
    )


def export(config: PipelineConfig, folder: Path, *, command: str) -> ExportResult:
    """Run (or resume, or replay) the pipeline through the builder and write the folder."""
    from .dataset_card import render_card

    run_dir, stage = folder / RUN_DIR, folder / STAGE_DIR
    shutil.rmtree(stage, ignore_errors=True)  # left by a run killed mid-export
    rows: dict[str, datasets.Dataset] = {}
    with (
        quiet_datasets(),  # our own progress bar is the only one
        tempfile.TemporaryDirectory(prefix="self-instruct-cache-") as cache_dir,
    ):
        for name in CONFIG_NAMES:
            builder = SelfInstruct(
                config_name=name, cache_dir=cache_dir, run_dir=str(run_dir), **asdict(config)
            )
            builder.download_and_prepare()
            if not builder.info.splits["train"].num_examples:
                raise NothingToExportError(_nothing_kept(name, run_dir, config))
            rows[name] = builder.as_dataset(split="train").flatten_indices()
        data_files = {name: [_write_parquet(rows[name], stage, name)] for name in CONFIG_NAMES}
        funnel = funnel_from_log(read_log(run_dir), config.num_instructions)
        render_card(
            stage,
            data_files=data_files,
            rows=rows,
            seeds=load_seeds(config.seeds),
            funnel=funnel,
            provenance=provenance(
                resolve_defaults(config), command, usage_from_log(read_log(run_dir))
            ),
        )
        num_rows = {n: len(d) for n, d in rows.items()}
    _publish(stage, folder)
    return ExportResult(folder, data_files, num_rows, funnel)
