"""One entry point for a run: the pipeline, its rows, into an output folder.

`run_to_folder` runs (or resumes, or replays) the pipeline once and writes the rows of all three
configurations in that one pass (`export/rows.py`), so the run log is replayed once for all of
them, and the funnel and usage of the card are the counts that same pass kept (the pipeline's
live `RunSummary`). It stages the Parquet files and the card and publishes them
(`export/folder.py`). The backend is passed in, or loaded from the options when the run needs
one; the funnel counts what the filters kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from self_instruct.backends.base import Backend
from self_instruct.config import PipelineConfig
from self_instruct.export.files import check_no_links
from self_instruct.export.folder import publish, write_parquet
from self_instruct.export.provenance import provenance
from self_instruct.export.rows import run_rows, write_rows
from self_instruct.generation.pipeline import Pipeline
from self_instruct.layout import CONFIG_NAMES, RUN_DIR, STAGE_DIR
from self_instruct.runlog.exported_from import record_export
from self_instruct.runlog.lock import locked
from self_instruct.runlog.records import Record
from self_instruct.runlog.summary import RunSummary, summarize
from self_instruct.utils.verbosity import quiet_datasets

ROWS = "rows"  # in the staging folder: each configuration's rows (Arrow) until they are Parquet


class NothingToExportError(ValueError):
    """A configuration has no rows (the run kept nothing): the message gives the funnel."""


@dataclass
class RunResult:
    """What a run put in its folder: the data files, their row counts and the funnel."""

    folder: Path
    data_files: dict[str, list[str]]
    num_rows: dict[str, int]
    funnel: dict[str, dict[str, Any]]


def funnel_from_log(
    records: Iterable[Record], limit: int | None = None
) -> dict[str, dict[str, Any]]:
    """Generated -> rejected by reason -> kept, for instructions and for instances, with
    accepted instructions past `limit` counted as `beyond_quota` (see `RunSummary`)."""
    return summarize(records, limit).funnel()


def _nothing_kept(name: str, run_dir: Path, summary: RunSummary) -> str:
    """Why configuration `name` is empty, from the funnel, and what to try instead."""
    stage = summary.funnel()["instructions" if name == "instructions" else "instances"]
    rejected = ", ".join(f"{k} {v}" for k, v in stage["rejected"].items()) or "none"
    return (
        f"the run kept no {'instruction' if name == 'instructions' else 'instance'} "
        f"({stage['generated']} generated, rejected: {rejected}), so there is no '{name}' data to "
        f"write; nothing was exported. The finished rounds stay in {run_dir}. Try a larger "
        "--model, other --seeds or a higher --rouge-threshold, in another --output folder (or "
        "with --overwrite)."
    )


def _stage(
    pipeline: Pipeline, stage: Path, command: str
) -> tuple[dict[str, list[str]], dict[str, int], dict[str, dict[str, Any]]]:
    """Write the Parquet files and the card into `stage` from the pipeline's one pass: its
    data files, their row counts and the funnel."""
    from self_instruct.dataset_card.render import render_card

    config = pipeline.config
    rows = write_rows(
        run_rows(pipeline, pipeline.seed_tasks, config, pipeline.templates), stage / ROWS
    )
    summary = pipeline.summary  # counted in the pass that made the rows: no re-reading
    for name in CONFIG_NAMES:  # an empty configuration has no data to write: say why
        if not len(rows[name]):
            raise NothingToExportError(_nothing_kept(name, pipeline.log.dir, summary))
    data_files = {name: [write_parquet(rows[name], stage, name)] for name in CONFIG_NAMES}
    funnel = summary.funnel()
    render_card(
        stage,
        data_files=data_files,
        rows=rows,
        seeds=pipeline.seed_tasks,
        funnel=funnel,
        provenance=provenance(config, command, summary.usage),
    )
    return data_files, {name: len(dataset) for name, dataset in rows.items()}, funnel


def run_to_folder(
    config: PipelineConfig, folder: Path, *, command: str, backend: Backend | None = None
) -> RunResult:
    """Run (or resume, or replay) the pipeline and write the folder from its one pass.

    `backend` generates, if rounds remain; without one, the pipeline loads the options' backend
    if rounds remain, so a finished run loads no model. The folder's lock is held throughout.
    """
    with locked(folder / RUN_DIR):  # the run log's own hold of it ends before the export
        check_no_links(folder)  # never stage into, nor empty, a linked staging folder
        return _run_and_export(config, folder, command, backend)


def _run_and_export(
    config: PipelineConfig, folder: Path, command: str, backend: Backend | None
) -> RunResult:
    run_dir, stage = folder / RUN_DIR, folder / STAGE_DIR
    shutil.rmtree(stage, ignore_errors=True)  # left by a run killed mid-export
    pipeline = Pipeline(config, run_dir, backend=backend)
    try:
        with quiet_datasets():  # our own progress bar is the only one
            data_files, num_rows, funnel = _stage(pipeline, stage, command)
    finally:
        shutil.rmtree(stage / ROWS, ignore_errors=True)  # in the Parquet files now, or not needed
    record_export(run_dir, pipeline.log.state)
    publish(stage, folder)
    return RunResult(folder, data_files, num_rows, funnel)
