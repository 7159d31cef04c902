"""One process per run directory: an exclusive lock held for the whole run, export and push.

Two writers would interleave their rounds and publish duplicates, so a second process is refused
at once (never queued) with the folder and the holder's pid. Every command that writes a folder
takes it (`generate`, `push`, `audit`), so an audit never lands on a card of an export published
while it judged. The lock is `fcntl.flock` on `.self-instruct/lock`: the kernel drops it when its
holder dies, even by `kill -9`, so a crash never leaves a stale lock behind. The file also names
its holder (pid, host, command, start time) for the message; neither it nor the run directory is
a symbolic link (refused: it would be followed to someone else's file). Within one process the
lock is re-entrant (the CLI holds it around the builder, whose run log takes it too); it is keyed
by the lock file's inode, so a run directory deleted and made anew (`--overwrite`) gets a lock of
its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from self_instruct.layout import LOCK_FILE, RUN_DIR
from self_instruct.utils.durable import refuse_link

_held: dict[tuple[int, int], list[int]] = {}  # (st_dev, st_ino) -> [fd, depth]


class RunDirLockedError(RuntimeError):
    """Another process holds the run directory; the message names it and the folder."""


@contextlib.contextmanager
def locked(
    run_dir: Path, *, only_if_exists: bool = False, command: str | None = None
) -> Iterator[None]:
    """Hold `run_dir`'s lock inside the block (creating the folder); refuse if another has it.

    `only_if_exists`: lock nothing if there is no run directory yet (before an output folder
    is checked, when creating one would make a new folder look like an old run). `command`
    (`self-instruct audit`) is named to a process refused meanwhile.
    """
    if only_if_exists and not run_dir.is_dir():
        yield
        return
    key = acquire(run_dir, command)
    try:
        yield
    finally:
        release(key)


def acquire(run_dir: Path, command: str | None = None) -> tuple[int, int]:
    """Take the lock (or add a level to this process's hold of it); return its key."""
    refuse_link(run_dir)  # another folder: the lock and the log would be written there
    run_dir.mkdir(parents=True, exist_ok=True)
    for entry in run_dir.iterdir():  # the lock (emptied below), the log, the staging folder
        refuse_link(entry)
    path = run_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)  # a link made since
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        if key in _held:
            os.close(fd)
            _held[key][1] += 1
            return key
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirLockedError(_refusal(run_dir, path)) from None
        if _names(path, info):
            break
        os.close(fd)  # unlinked between open and flock (an --overwrite): lock the new file
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
    holder |= {"command": command} if command else {}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    _held[key] = [fd, 1]
    return key


def release(key: tuple[int, int]) -> None:
    """Drop one level of this process's hold; the last one unlocks."""
    entry = _held[key]
    entry[1] -= 1
    if entry[1] == 0:
        del _held[key]
        with contextlib.suppress(OSError):
            os.ftruncate(entry[0], 0)  # no stale holder is ever named
        os.close(entry[0])


def _names(path: Path, info: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)


def _refusal(run_dir: Path, path: Path) -> str:
    folder = run_dir.parent if run_dir.name == RUN_DIR else run_dir
    try:
        holder = json.loads(path.read_text())
        running = f"`{holder['command']}` " if holder.get("command") else ""
        who = f"pid {holder['pid']} on {holder['host']}, {running}since {holder['since']}"
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        who = "its pid is not written yet"
    return (
        f"{folder} is in use by another self-instruct process ({who}; lock: {path}). Two "
        "writers of one folder would mix their work (interleaved rounds, or an audit of one "
        "export on the card of the next): wait for it to end or stop it, then run the command "
        "again."
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
