"""One entry point for a run: the pipeline, through the builder, into an output folder.

`run_to_folder` runs (or resumes, or replays) the pipeline once, through the `datasets` builder
of the first configuration; that pass also writes the other two configurations' rows to Arrow
files (`RowSpool`), so the run log is replayed once for all three, and the funnel and usage of
the card are the counts that same pass kept (the pipeline's live `RunSummary`). It stages the
Parquet files and the card and publishes them (`export/folder.py`). The backend is passed in, or
loaded from the options when the run needs one; the funnel counts what the filters kept.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets

from self_instruct.backends import resolve_defaults
from self_instruct.backends.base import Backend
from self_instruct.config import PipelineConfig
from self_instruct.dataset_builder import SelfInstruct
from self_instruct.export.files import check_no_links
from self_instruct.export.folder import publish, write_parquet
from self_instruct.export.provenance import provenance
from self_instruct.export.rows import RowSpool
from self_instruct.layout import CONFIG_NAMES, RUN_DIR, STAGE_DIR
from self_instruct.prompting.prompts import load_templates
from self_instruct.prompting.seeds import load_seeds
from self_instruct.runlog.exported_from import record_export
from self_instruct.runlog.lock import locked
from self_instruct.runlog.records import Record
from self_instruct.runlog.summary import RunSummary, summarize
from self_instruct.utils.verbosity import quiet_datasets


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


def run_to_folder(
    config: PipelineConfig, folder: Path, *, command: str, backend: Backend | None = None
) -> RunResult:
    """Run (or resume, or replay) the pipeline through the builder and write the folder.

    `backend` generates, if rounds remain, for the first configuration's builder, whose pass
    makes every configuration's rows; without one, the pipeline loads the options' backend if
    rounds remain, so a finished run loads no model. The folder's lock is held throughout.
    """
    with locked(folder / RUN_DIR):  # the builder's run log lets go of it before the export
        check_no_links(folder)  # never stage into, nor empty, a linked staging folder
        return _run_and_export(config, folder, command, backend)


def _run_and_export(
    config: PipelineConfig, folder: Path, command: str, backend: Backend | None
) -> RunResult:
    from self_instruct.dataset_card.render import render_card

    run_dir, stage = folder / RUN_DIR, folder / STAGE_DIR
    shutil.rmtree(stage, ignore_errors=True)  # left by a run killed mid-export
    with (
        quiet_datasets(),  # our own progress bar is the only one
        tempfile.TemporaryDirectory(prefix="self-instruct-cache-") as cache_dir,
    ):
        templates = load_templates(config.prompt_templates)
        spool = RowSpool(Path(cache_dir), CONFIG_NAMES[1:], config.seed, templates)
        builder = SelfInstruct(
            config_name=CONFIG_NAMES[0],
            cache_dir=cache_dir,
            run_dir=str(run_dir),
            backend_instance=backend,
            spool=spool,
            **asdict(config),
        )
        try:
            builder.download_and_prepare()
        finally:
            spool.close()
        summary = builder.run_summary  # counted in the pass that made the rows: no re-reading
        assert summary is not None and builder.run_log is not None, "a fresh cache makes rows"
        spooled = {name: spool.dataset(name) for name in CONFIG_NAMES[1:]}
        sizes = {CONFIG_NAMES[0]: builder.info.splits["train"].num_examples}
        sizes |= {name: len(rows) for name, rows in spooled.items()}
        for name in CONFIG_NAMES:  # an empty split has no dataset to load: say why instead
            if not sizes[name]:
                raise NothingToExportError(_nothing_kept(name, run_dir, summary))
        first = builder.as_dataset(split="train").flatten_indices()
        rows: dict[str, datasets.Dataset] = {CONFIG_NAMES[0]: first, **spooled}
        data_files = {name: [write_parquet(rows[name], stage, name)] for name in CONFIG_NAMES}
        funnel = summary.funnel()
        render_card(
            stage,
            data_files=data_files,
            rows=rows,
            seeds=load_seeds(config.seeds),
            funnel=funnel,
            provenance=provenance(resolve_defaults(config), command, summary.usage),
        )
        num_rows = {n: len(d) for n, d in rows.items()}
    record_export(run_dir, builder.run_log.state)
    publish(stage, folder)
    return RunResult(folder, data_files, num_rows, funnel)
