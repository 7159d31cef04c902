"""The files an export puts in an output folder: named by content, recorded, and the only ones
the tool ever deletes.

Three promises rest on this module:

- A published file is named by its content hash (`content_named`), so a new export never
  overwrites a file the current card names: a kill mid-export leaves the old card and its files.
- The card records each file's size and sha256 (`describe`); `changed` compares the folder with
  that record, so a push refuses files that are not what the export wrote.
- `.self-instruct/manifest.json` lists every file an export moved into the folder, written
  before the move; `--overwrite` and later exports delete those files and nothing else (a `.git`
  folder, notes or a checkpoint beside them stay).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from .layout import CARD, MANIFEST, RUN_DIR
from .logfile import write_durably

HASH_CHARS = 12  # of the sha256 in a file name: names differ whenever contents do


class OutputFolderError(ValueError):
    """The output folder cannot be used as asked; the message says what to pass instead."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):  # a shard may be larger than memory
            digest.update(chunk)
    return digest.hexdigest()


def content_named(path: Path) -> Path:
    """Rename `dir/name.ext` to `dir/name-<sha256 prefix>.ext`; return the new path."""
    target = path.with_name(f"{path.stem}-{sha256_of(path)[:HASH_CHARS]}{path.suffix}")
    os.replace(path, target)
    return target


def describe(folder: Path, paths: Iterable[str]) -> dict[str, dict[str, int | str]]:
    """`{path: {bytes, sha256}}` for files relative to `folder`: what the card records."""
    return {
        path: {"bytes": (folder / path).stat().st_size, "sha256": sha256_of(folder / path)}
        for path in sorted(paths)
    }


def is_inside(path: str) -> bool:
    """A relative POSIX path that stays inside its folder (no `..`, not absolute)."""
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and "\\" not in path


def changed(folder: Path, records: dict[str, dict]) -> list[str]:
    """What differs between `folder` and `records` (from `describe`), one phrase per file."""
    problems = []
    for path, record in records.items():
        local, record = folder / path, record if isinstance(record, dict) else {}
        if not is_inside(path):
            problems.append(f"{path!r} is outside the folder")
        elif not local.is_file():
            problems.append(f"{path} is missing")
        elif local.stat().st_size != record.get("bytes"):
            problems.append(f"{path} has {local.stat().st_size} bytes, not {record.get('bytes')}")
        elif sha256_of(local) != record.get("sha256"):
            problems.append(f"{path} has other contents (sha256 differs)")
    return problems


def read_manifest(folder: Path) -> list[str]:
    """The files earlier exports put in `folder`, relative to it; [] before the first export."""
    path = folder / RUN_DIR / MANIFEST
    if not path.is_file():
        return []
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, list):
            raise TypeError(f"'files' is {type(files).__name__}, not a list")
    except (ValueError, KeyError, TypeError) as err:  # written whole by us: someone edited it
        raise OutputFolderError(
            f"{path} is not a manifest written by self-instruct ({err!r}), so which files in "
            f"{folder} are the tool's is unknown: delete them yourself, or restore the file."
        ) from None
    return [f for f in files if isinstance(f, str) and is_inside(f)]


def write_manifest(folder: Path, files: Iterable[str]) -> None:
    text = json.dumps({"files": sorted(set(files))}, indent=2) + "\n"
    write_durably(folder / RUN_DIR / MANIFEST, text.encode("utf-8"))


def remove_files(folder: Path, files: Iterable[str]) -> list[str]:
    """Delete `files` (relative to `folder`) that exist, then the folders they leave empty;
    return what was deleted. The card goes first, so no card outlives its data."""
    removed = []
    for relative in sorted(files, key=lambda f: (f != CARD, f)):
        path = folder / relative
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(relative)
    for parent in sorted({(folder / f).parent for f in removed}, reverse=True):
        with contextlib.suppress(OSError):  # not empty: someone else's files are in it
            while parent != folder:
                parent.rmdir()
                parent = parent.parent
    return removed


def remove_run(folder: Path) -> list[str]:
    """What `--overwrite` deletes: the files of the manifest, then the run directory, last, so
    that an overwrite killed midway finds the manifest again and finishes."""
    removed = remove_files(folder, read_manifest(folder))
    if (folder / RUN_DIR).exists():
        shutil.rmtree(folder / RUN_DIR)
        removed.append(f"{RUN_DIR}/")
    return removed
