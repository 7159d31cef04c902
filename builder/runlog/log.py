"""The append-only run log: nothing generated is lost, and a stopped run resumes where it was.

A run directory holds `log.jsonl` (see runlog/file.py for its layout) and `config.json`, a readable
copy of the log's run header: the options that decide the data. Reopening compares both with the
options given, and restores a deleted `config.json` from the header. The pipeline appends one
round at a time -- every accepted and rejected item of the round, then the `round` marker that
seals it -- in one write, then fsyncs it. A write that fails (disk full, a signal) is cut back off
at once; on reopening, a torn tail (a round interrupted by `kill -9` or a power cut, possibly
with a torn last line) is cut off too, so a round is either wholly in the log or not at all, and
the resumed run redoes it. Any other damage stops the run and changes nothing, and so does a log
that holds less than the export beside it was built from (`exported-from.json`, written by each
export): an emptied or shortened log is never generated again silently.
Records are streamed back from the file, never held in memory, so memory stays flat however long
the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from self_instruct.layout import CONFIG_FILE, LOG_FILE
from self_instruct.runlog import lock as runlock
from self_instruct.runlog.check import LAST_ROUND, Damage, encode, seal
from self_instruct.runlog.exported_from import check_export, read_export
from self_instruct.runlog.file import (
    LogState,
    Repair,
    RunLogDamagedError,
    Scan,
    damage_message,
    repair,
    scan,
    units,
)
from self_instruct.runlog.records import ROUND, USAGE_KEYS, Record, run_header
from self_instruct.utils.durable import write_durably

__all__ = [
    "ROUND",
    "USAGE_KEYS",
    "Record",
    "RunLog",
    "RunLogDamagedError",
    "check_log",
    "read_log",
]

logger = logging.getLogger(__name__)


class RunConfigMismatchError(ValueError):
    """Resuming with options that would change the data; the message lists the differences."""


class StoredConfigError(ValueError):
    """`config.json` is empty or not a JSON object; the message says how to restore it."""


def _records(path: Path, end: int | None = None) -> Iterator[Record]:
    """The records of the complete rounds (up to byte `end`); raise at damage, never skip it."""
    for unit in units(path):
        if end is not None and unit.end > end:
            return
        if isinstance(unit, Damage):
            raise RunLogDamagedError(damage_message(path, [unit]))
        if not unit.is_header:
            yield from unit.records


def read_log(run_dir: str | os.PathLike) -> Iterator[Record]:
    """The records of a run directory's complete rounds, streamed (for exports and statistics).

    A damaged line raises `RunLogDamagedError` when reached: a reader never gets a prefix of the
    data as if it were all of it.
    """
    return _records(Path(run_dir) / LOG_FILE)


def check_log(run_dir: str | os.PathLike) -> None:
    """What reopening checks, without opening: raise `RunLogDamagedError` if the run log is
    damaged anywhere but a torn tail, `RunLogMismatchError` (exported_from.py) if it no longer
    holds what the export beside it was built from."""
    run_dir = Path(run_dir)
    _check(run_dir, *_scan_for_export(run_dir))


def _scan_for_export(run_dir: Path) -> tuple[Scan, LogState | None]:
    """The log's scan, with the digest of the rounds the folder's export was built from."""
    exported = read_export(run_dir)
    return scan(run_dir / LOG_FILE, exported.next_round if exported else None), exported


def _check(run_dir: Path, found: Scan, exported: LogState | None) -> None:
    """Damage first, then the export; a log of an earlier version gets a one-line notice."""
    log = run_dir / LOG_FILE
    if found.damage:
        raise RunLogDamagedError(damage_message(log, found.damage))
    check_export(run_dir, found, exported)
    if found.unsealed:
        logger.warning(
            "%s: %d rounds were written by an earlier version, without a hash: they are checked "
            "by structure only (a line deleted or edited there may go unnoticed).",
            log,
            found.unsealed,
        )


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _read_config(path: Path) -> dict[str, Any] | None:
    """The stored options, or None when the file is missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        stored = json.loads(text)
    except ValueError:
        stored = None
    if not isinstance(stored, dict):
        what = "is empty" if not text.strip() else "does not hold a JSON object"
        raise StoredConfigError(
            f"{path} {what}. It is only a copy of the run header on line 1 of {LOG_FILE}: "
            "delete it, and the next run restores it from the log."
        )
    return stored


class RunLog:
    """One run directory: its stored configuration and its log of complete rounds.

    Records are read back from the file when asked for, never kept in memory: a run of any length
    holds only what the pipeline itself needs (the ROUGE-L pool). From `open` to `close` the run
    directory is locked (runlog/lock.py): no other process can write it.
    """

    def __init__(self, run_dir: str | os.PathLike, config: dict[str, Any]) -> None:
        self.dir = Path(run_dir)
        self.config = config
        self._end = 0  # bytes of complete units in the log
        self._digest: Any = None  # of the rounds' bytes (see `state`)
        self.next_round = 0  # the number the next round appended must carry
        self._fd: int | None = None
        self._lock: tuple[int, int] | None = None

    @property
    def log_path(self) -> Path:
        return self.dir / LOG_FILE

    def open(self) -> Iterator[Record]:
        """Create the run directory or reopen it; return the records of its complete rounds.

        Everything is checked before anything is written: damage, other options or a log that
        no longer matches the export beside it leave the directory exactly as it was.
        """
        self._lock = runlock.acquire(self.dir)
        try:
            found, exported = _scan_for_export(self.dir)
            _check(self.dir, found, exported)
            self._check_identity(found.header)
            self._digest, self.next_round = found.digest, found.next_round
            self._fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.ftruncate(self._fd, found.end)  # drop a round that never finished
            self._end = found.end
            if found.header is None:
                self._append(encode([run_header(self.config)]))
        except BaseException:
            self.close()
            raise
        return self.iter_records()

    def _check_identity(self, header: Record | None) -> None:
        """Both records of the options must match the ones given; restore a missing copy."""
        config_path = self.dir / CONFIG_FILE
        stored = _read_config(config_path)
        logged = header["identity"] if header else None
        for source, identity in ((config_path, stored), (self.log_path, logged)):
            if identity is not None and (diffs := _differences(identity, self.config)):
                raise RunConfigMismatchError(
                    f"{self.dir} holds a run made with other options (as {source.name} records "
                    "them):\n  " + "\n  ".join(diffs) + "\nRerun with the original options to "
                    "resume it, or choose another output folder (or --overwrite to discard it)."
                )
        if stored is None:
            write_durably(config_path, json.dumps(self.config, indent=2, sort_keys=True).encode())

    def repair(self) -> Repair:
        """Move the log's damaged round(s) aside (see logfile.repair); keep every other round.

        Only for the run's own options: a damaged header is written again from them, so they
        must match config.json, which must then exist.
        """
        with runlock.locked(self.dir):
            found = scan(self.log_path)
            if found.header is None and found.damage and not (self.dir / CONFIG_FILE).exists():
                raise StoredConfigError(
                    f"{self.log_path}: its run header is damaged and {CONFIG_FILE} is missing, so "
                    "nothing records the options that made this run; --repair-log cannot tell "
                    "whether they are the ones given. Restore either file from a backup."
                )
            self._check_identity(found.header)
            return repair(self.log_path, run_header(self.config))

    def append_round(self, records: list[Record], marker: Mapping[str, Any]) -> None:
        """Write one round's records and the marker that seals them durably (write + fsync),
        in one go."""
        data = seal(records, marker)
        self._append(data)
        self._digest.update(data)
        self.next_round = marker.get(LAST_ROUND, marker[ROUND]) + 1

    @property
    def state(self) -> LogState:
        """The rounds logged so far: what an export built from them records."""
        return LogState(self.next_round, self._digest.hexdigest())

    def _append(self, data: bytes) -> None:
        """Append whole units durably. If anything stops the write (a full disk, Ctrl-C,
        SIGTERM), the partial unit is cut off again before the error goes on, so the log always
        ends with a complete one."""
        assert self._fd is not None, "open() the run log first"
        try:
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._end)
            if isinstance(err, OSError) and err.filename is None:  # say which file failed
                raise OSError(err.errno, err.strerror, str(self.log_path)) from err
            raise
        self._end += len(data)

    def iter_records(self) -> Iterator[Record]:
        """The records of the complete rounds written so far, read back from the file."""
        return _records(self.log_path, self._end)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            runlock.release(self._lock)
            self._lock = None


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` until every byte is out (a write may take only part of its buffer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
