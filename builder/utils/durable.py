"""Writes that survive a crash, and the refusal to write through a symbolic link."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from self_instruct.errors import OutputFolderError


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, all of it or nothing: a synced temporary file, a rename, then
    the folder synced too. A full disk or a kill leaves the old file whole, never a cut one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        os.chmod(tmp, mode)  # mkstemp creates 0600; keep the file as readable as before
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def refuse_link(path: Path) -> None:
    """Refuse a symbolic link where the tool creates, stages into or deletes files: a write or a
    delete through it would reach files that are not the tool's (a user's folder, another run)."""
    if path.is_symlink():
        raise OutputFolderError(
            f"{path} is a symbolic link: self-instruct writes and deletes only real files and "
            "folders of its own, never through a link (it could reach someone else's files). "
            "Remove the link, or put a real file or folder in its place, then run the command "
            "again."
        )
