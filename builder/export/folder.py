"""The output folder: a finished run's files laid out like a Hub dataset repository.

    DIR/README.md                      the card, whose YAML `configs:` name the data files
    DIR/data/<config>-<hash>.parquet   one file per configuration, named by its content hash
    DIR/plots/<figure>-<hash>.png      the card's figures
    DIR/.self-instruct/                the run log and the manifest (never uploaded); exports
                                       are staged here

File names carry their content hash because `datasets` keys its cache for a local folder on the
card's YAML alone (with fixed names, a folder rewritten by a later run would load the earlier
run's rows from the cache), and so that a new export never overwrites a file the current card
names (`files.py`). Other files in DIR are never touched: only the manifest's are deleted,
and only the manifest's are replaced.
Running the pipeline into such a folder is `run.py`'s part.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import datasets

from self_instruct.errors import OutputFolderError
from self_instruct.export.files import (
    check_folder,
    check_no_links,
    content_named,
    read_manifest,
    remove_files,
    remove_run,
    write_manifest,
)
from self_instruct.layout import CARD, DATA_DIR, MANIFEST, RUN_DIR
from self_instruct.runlog.lock import locked


def prepare_output(folder: Path, *, resume: bool, overwrite: bool) -> list[str]:
    """Check the output folder is ours to write; return what `--overwrite` removed from it.

    Every check runs before anything is created or deleted, and `--overwrite` deletes only what
    earlier exports of a Self-Instruct run wrote there (its manifest) and the run directory: a
    mistyped --output, or a `.git` folder or notes beside the data, must never cost a file
    (`check_folder`). The folder's lock is held throughout.
    """
    run_dir = folder / RUN_DIR
    removed: list[str] = []
    with locked(run_dir, only_if_exists=True):
        if check_folder(folder):
            if overwrite:
                removed = remove_run(folder)
            elif not resume:
                raise OutputFolderError(
                    f"{folder} already holds a Self-Instruct run. Pass --resume to continue it, "
                    "--overwrite to replace it, or choose an empty --output folder."
                )
        elif resume:
            raise OutputFolderError(
                f"--resume: {folder} holds no run to resume ({run_dir} records none); "
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


def write_parquet(ds: datasets.Dataset, folder: Path, name: str) -> str:
    """Write `folder/data/<name>-<content hash>.parquet`; return its path relative to `folder`."""
    (folder / DATA_DIR).mkdir(parents=True, exist_ok=True)
    path = folder / DATA_DIR / f"{name}.parquet"
    ds.to_parquet(str(path))
    return content_named(path).relative_to(folder).as_posix()


def publish(stage: Path, folder: Path) -> None:
    """Move a staged export into `folder`: data and plots first, the card last, then stale files.

    The manifest lists the new files before any of them appears, so a kill at any point leaves
    every file the tool wrote on record. Each move is a rename of a content-named file, so at
    every moment the card names files that exist and hold what it records: a run killed
    mid-export leaves the previous export whole (and pushable), and its resume writes the new
    one. Stale files are only those of earlier exports, never other files in the folder; a file
    of the same name that no export wrote (a README.md put there during the run) is refused.
    """
    check_no_links(folder)
    staged = [p.relative_to(stage).as_posix() for p in sorted(stage.rglob("*")) if p.is_file()]
    previous = read_manifest(folder)
    if theirs := [f for f in staged if f not in previous and os.path.lexists(folder / f)]:
        raise OutputFolderError(
            f"{folder / theirs[0]} is not a file an export of this run wrote ({MANIFEST} does "
            f"not list it), and the export would replace it: move it out of {folder}, then "
            "resume the run (--resume) to export; its rounds are kept."
        )
    write_manifest(folder, [*previous, *staged])
    for relative in staged:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        if relative != CARD:
            os.replace(stage / relative, folder / relative)
    os.replace(stage / CARD, folder / CARD)
    remove_files(folder, set(previous) - set(staged))
    write_manifest(folder, staged)
    shutil.rmtree(stage)
