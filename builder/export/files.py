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
- Nothing else is ever taken for the tool's (`check_folder`): a run directory is a run's only if
  it records one, a card only if the manifest lists it, and a symbolic link where the tool writes,
  stages or deletes is refused (`check_no_links`), never followed to someone else's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from self_instruct.errors import OutputFolderError
from self_instruct.layout import (
    CARD,
    CONFIG_FILE,
    DATA_DIR,
    LOCK_FILE,
    LOG_FILE,
    MANIFEST,
    OPTIONS_FILE,
    PLOTS_DIR,
    RUN_DIR,
)
from self_instruct.utils.durable import refuse_link, write_durably

HASH_CHARS = 12  # of the sha256 in a file name: names differ whenever contents do
RECORDS = (LOG_FILE, OPTIONS_FILE, CONFIG_FILE, MANIFEST)  # what makes a run directory a run's
WRITTEN = (RUN_DIR, CARD, DATA_DIR, PLOTS_DIR)  # the names in a folder the tool writes under


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


def file_entries(folder: Path, paths: Iterable[str]) -> dict[str, dict[str, int | str]]:
    """`{path: {bytes, sha256}}` for files relative to `folder`: what the card records."""
    return {
        path: {"bytes": (folder / path).stat().st_size, "sha256": sha256_of(folder / path)}
        for path in sorted(paths)
    }


def is_inside(path: str) -> bool:
    """A relative POSIX path that stays inside its folder (no `..`, not absolute)."""
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and "\\" not in path


def is_export_file(path: str) -> bool:
    """A path an export or an audit writes: the card, or a file right in data/ or plots/."""
    parts = PurePosixPath(path).parts
    in_folders = len(parts) == 2 and parts[0] in (DATA_DIR, PLOTS_DIR)
    return path == CARD or (in_folders and is_inside(path) and "/".join(parts) == path)


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
        if strays := [f for f in files if not (isinstance(f, str) and is_export_file(f))]:
            raise ValueError(f"{strays[0]!r} is no file an export writes")  # `..`, .git/HEAD
    except (ValueError, KeyError, TypeError) as err:  # written whole by us: someone edited it
        raise OutputFolderError(
            f"{path} is not a manifest written by self-instruct ({err!r}), so which files in "
            f"{folder} are the tool's is unknown: delete them yourself, or restore the file."
        ) from None
    return files


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
    check_no_links(folder)
    removed = remove_files(folder, read_manifest(folder))
    if (folder / RUN_DIR).exists():
        shutil.rmtree(folder / RUN_DIR)
        removed.append(f"{RUN_DIR}/")
    return removed


def check_no_links(folder: Path) -> None:
    """Refuse a link anywhere the tool writes in `folder`: the card, data/ and plots/, every entry
    of the run directory (its log, lock, manifest, staging and audit folders), the manifest's
    files. `folder` itself may be a link (an --output on another disk): the user chose it."""
    for name in WRITTEN:
        refuse_link(folder / name)
    for root, dirs, files in os.walk(folder / RUN_DIR):  # a link to a folder is listed, not entered
        for name in (*dirs, *files):
            refuse_link(Path(root) / name)
    for relative in read_manifest(folder):
        refuse_link(folder / relative)


def holds_run(folder: Path) -> bool:
    """Whether `folder`'s run directory records a run: its log, options or manifest."""
    return any((folder / RUN_DIR / name).is_file() for name in RECORDS)


def check_folder(folder: Path) -> bool:
    """Refuse an output folder whose files the tool could take for its own; return whether it
    holds a run. Nothing is created or deleted.

    A `.self-instruct/` that records no run (empty or holding just a lock: someone else's, or
    left by a run killed in its first second) makes nothing beside it the tool's, and a card is
    the tool's only if the manifest lists it: otherwise an export would replace a user's own
    README.md, and --overwrite take their files for a run's.
    """
    if not folder.is_dir():
        return False
    check_no_links(folder)
    if not holds_run(folder):
        if _holds_anything(folder):
            raise OutputFolderError(
                f"{folder} holds other files, not a Self-Instruct run (--overwrite deletes only "
                "a run's files): choose an empty or new --output folder."
            )
        return False
    if (folder / CARD).exists() and CARD not in read_manifest(folder):
        raise OutputFolderError(
            f"{folder / CARD} is not a card this run exported ({folder / RUN_DIR / MANIFEST} does "
            f"not list it), and an export would replace it: move it out of {folder}, or choose "
            "another --output folder."
        )
    return True


def _holds_anything(folder: Path) -> bool:
    """Whether `folder` holds anything but a run directory that is empty or holds its lock."""
    for entry in folder.iterdir():
        if entry.name != RUN_DIR or not entry.is_dir():
            return True
        if any(inner.name != LOCK_FILE for inner in entry.iterdir()):
            return True
    return False
