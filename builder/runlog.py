"""The append-only run log: nothing generated is lost, and a stopped run resumes where it was.

A run directory holds `config.json` (the options that decide the data) and `log.jsonl`, one JSON
record a line. The pipeline appends one round at a time -- every accepted and rejected item of the
round, then a `round` marker -- and flushes and fsyncs it. On reopening, records after the last
marker (a round interrupted by a crash, possibly with a torn last line) are cut off, so a round is
either wholly in the log or not at all, and the resumed run redoes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
LOG_FILE = "log.jsonl"
ROUND = "round"
USAGE_KEYS = ("requests", "failed_requests", "prompt_tokens", "completion_tokens", "seconds")

Record = dict[str, Any]


class RunConfigMismatchError(ValueError):
    """Resuming with options that would change the data; the message lists the differences."""


def _read_complete_rounds(path: Path) -> tuple[list[Record], int]:
    """Records up to the last round marker, and the byte length they take in the file."""
    records: list[Record] = []
    pending: list[Record] = []
    end = 0
    with path.open("rb") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:  # a torn last line: the process died mid-write
                break
            pending.append(record)
            if record.get("type") == ROUND:
                records += pending
                pending = []
                end = f.tell()
    return records, end


def read_log(run_dir: str | os.PathLike) -> list[Record]:
    """The complete rounds of a run directory, read-only (for exports and statistics)."""
    path = Path(run_dir) / LOG_FILE
    return _read_complete_rounds(path)[0] if path.exists() else []


def usage_from_log(records: list[Record]) -> dict[str, float]:
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
    """One run directory: its stored configuration and its log of complete rounds."""

    def __init__(self, run_dir: str | os.PathLike, config: dict[str, Any]) -> None:
        self.dir = Path(run_dir)
        self.config = config
        self.records: list[Record] = []
        self._file = None

    @property
    def log_path(self) -> Path:
        return self.dir / LOG_FILE

    def open(self) -> list[Record]:
        """Create the run directory or reopen it; return the records of its complete rounds."""
        self.dir.mkdir(parents=True, exist_ok=True)
        config_path = self.dir / CONFIG_FILE
        if config_path.exists():
            self._check_config(json.loads(config_path.read_text()))
        else:
            _write_atomic(config_path, json.dumps(self.config, indent=2, sort_keys=True))
        if self.log_path.exists():
            self.records, end = _read_complete_rounds(self.log_path)
            os.truncate(self.log_path, end)
        self._file = self.log_path.open("a", encoding="utf-8")
        return self.records

    def _check_config(self, stored: dict[str, Any]) -> None:
        if diffs := _differences(stored, self.config):
            raise RunConfigMismatchError(
                f"{self.dir} holds a run made with other options:\n  "
                + "\n  ".join(diffs)
                + "\nRerun with the original options to resume it, or choose another output "
                "folder (or --overwrite to discard it)."
            )

    def append_round(self, records: list[Record], marker: Record) -> None:
        """Write one round's records and its marker durably (flush + fsync) in one go."""
        assert self._file is not None, "open() the run log first"
        lines = [*records, {**marker, "type": ROUND}]
        self._file.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records += lines

    def iter_type(self, record_type: str) -> Iterator[Record]:
        return (r for r in self.records if r.get("type") == record_type)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
