"""The append-only run log: nothing generated is lost, and a stopped run resumes where it was.

A run directory holds `config.json` (the options that decide the data) and `log.jsonl`, one JSON
record a line. The pipeline appends one round at a time -- every accepted and rejected item of the
round, then a `round` marker -- in one write, then fsyncs it. A write that fails (disk full, a
signal) is cut back off at once; on reopening, records after the last marker (a round interrupted
by `kill -9` or a power cut, possibly with a torn last line) are cut off too, so a round is either
wholly in the log or not at all, and the resumed run redoes it. Records are streamed back from the
file, never held in memory, so memory stays flat however long the run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

RUN_DIR = ".self-instruct"  # inside an output folder: the run log and options, never uploaded
CONFIG_FILE = "config.json"
LOG_FILE = "log.jsonl"
ROUND = "round"
USAGE_KEYS = ("requests", "failed_requests", "prompt_tokens", "completion_tokens", "seconds")

Record = dict[str, Any]


class RunConfigMismatchError(ValueError):
    """Resuming with options that would change the data; the message lists the differences."""


def _rounds(path: Path) -> Iterator[tuple[list[Record], int]]:
    """Each complete round's records, with the byte offset just past its marker.

    Reading stops at the first line that is not a whole JSON record ending in a newline: the
    process died mid-write, and what follows the last marker is an unfinished round.
    """
    if not path.exists():
        return
    pending: list[Record] = []
    with path.open("rb") as f:
        for line in f:
            try:
                record = json.loads(line) if line.endswith(b"\n") else None
            except ValueError:
                record = None
            if not isinstance(record, dict):
                return
            pending.append(record)
            if record.get("type") == ROUND:
                yield pending, f.tell()
                pending = []


def _complete_length(path: Path) -> int:
    """The byte length of the log's complete rounds."""
    return max((offset for _, offset in _rounds(path)), default=0)


def read_log(run_dir: str | os.PathLike) -> Iterator[Record]:
    """The records of a run directory's complete rounds, streamed (for exports and statistics)."""
    return (record for records, _ in _rounds(Path(run_dir) / LOG_FILE) for record in records)


def usage_from_log(records: Iterable[Record]) -> dict[str, float]:
    """Requests, tokens and seconds summed over the round markers, across resumes."""
    totals: dict[str, float] = dict.fromkeys(USAGE_KEYS, 0)
    for marker in (r for r in records if r.get("type") == ROUND):
        for key in USAGE_KEYS:
            totals[key] += marker.get(key, 0)
    return totals


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


class RunLog:
    """One run directory: its stored configuration and its log of complete rounds.

    Records are read back from the file when asked for, never kept in memory: a run of any length
    holds only what the pipeline itself needs (the ROUGE-L pool).
    """

    def __init__(self, run_dir: str | os.PathLike, config: dict[str, Any]) -> None:
        self.dir = Path(run_dir)
        self.config = config
        self._end = 0  # bytes of complete rounds in the log
        self._fd: int | None = None

    @property
    def log_path(self) -> Path:
        return self.dir / LOG_FILE

    def open(self) -> Iterator[Record]:
        """Create the run directory or reopen it; return the records of its complete rounds."""
        self.dir.mkdir(parents=True, exist_ok=True)
        config_path = self.dir / CONFIG_FILE
        if config_path.exists():
            self._check_config(json.loads(config_path.read_text()))
        else:
            _write_atomic(config_path, json.dumps(self.config, indent=2, sort_keys=True))
        self._end = _complete_length(self.log_path)
        self._fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.ftruncate(self._fd, self._end)  # drop an interrupted round
        return self.iter_records()

    def _check_config(self, stored: dict[str, Any]) -> None:
        if diffs := _differences(stored, self.config):
            raise RunConfigMismatchError(
                f"{self.dir} holds a run made with other options:\n  "
                + "\n  ".join(diffs)
                + "\nRerun with the original options to resume it, or choose another output "
                "folder (or --overwrite to discard it)."
            )

    def append_round(self, records: list[Record], marker: Record) -> None:
        """Write one round's records and its marker durably (write + fsync) in one go.

        If anything stops the write (a full disk, Ctrl-C, SIGTERM), the partial round is cut off
        again before the error goes on, so the log always ends with a complete round.
        """
        assert self._fd is not None, "open() the run log first"
        lines = [*records, {**marker, "type": ROUND}]
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines).encode("utf-8")
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
        end = self._end
        rounds = itertools.takewhile(lambda r: r[1] <= end, _rounds(self.log_path))
        return (record for records, _ in rounds for record in records)

    def iter_type(self, record_type: str) -> Iterator[Record]:
        return (r for r in self.iter_records() if r.get("type") == record_type)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` until every byte is out (a write may take only part of its buffer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
