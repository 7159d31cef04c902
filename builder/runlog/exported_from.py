"""What an export was built from, and the check that its run log still holds it.

Each export writes `exported-from.json` beside the run log before it is published: one past the
number of the last round it was built from, and the sha256 of those rounds' bytes. Reopening the
log (and `stats`) compares: a log that was emptied, cut back to its header or to fewer rounds,
or that holds other rounds up to there, would make a resumed run generate again, silently, what
the export already holds, or something else in its place; it is refused instead. Rounds that
`--repair-log` marked as moved aside are what the user asked for, and pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from self_instruct.layout import EXPORTED_FROM, LOG_FILE, MANIFEST
from self_instruct.runlog.file import LogState, Scan
from self_instruct.utils.durable import write_durably


class RunLogMismatchError(ValueError):
    """The log holds less, or other rounds, than the export beside it was built from."""


class ExportRecordError(ValueError):
    """`exported-from.json` is not what an export wrote; the message says what to do."""


def record_export(run_dir: str | os.PathLike, state: LogState) -> None:
    """Write which rounds of the log an export is built from, before the export is published
    (the log only grows until then, so the record never claims more than it holds)."""
    text = json.dumps({"next_round": state.next_round, "sha256": state.sha256}, indent=2)
    write_durably(Path(run_dir) / EXPORTED_FROM, (text + "\n").encode("utf-8"))


def read_export(run_dir: Path) -> LogState | None:
    """The rounds the folder's export was built from; None before the first export."""
    path = run_dir / EXPORTED_FROM
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return LogState(int(stored["next_round"]), str(stored["sha256"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:  # written whole by us: someone edited it
        raise ExportRecordError(
            f"{path} is not what self-instruct wrote ({err!r}): it records which rounds of "
            f"{LOG_FILE} the folder's export was built from. Restore it from a backup, or "
            "delete it to skip that check."
        ) from None


def check_export(run_dir: Path, found: Scan, exported: LogState | None) -> None:
    """Raise `RunLogMismatchError` if the log `found` no longer holds what was exported."""
    if problem := _mismatch(run_dir, found, exported):
        raise RunLogMismatchError(
            f"{run_dir / LOG_FILE} no longer matches the export beside it: the export in "
            f"{run_dir.parent} was built from {problem}. Nothing was changed: generating again "
            "would replace the export with other data. Restore the log from a backup to "
            "continue the run, or pass --overwrite to discard the run and its export and start "
            "again."
        )


def _mismatch(run_dir: Path, found: Scan, exported: LogState | None) -> str | None:
    """What the export was built from that the log no longer holds, or None."""
    if found.rounds:
        holds = f"only rounds up to round {found.next_round - 1}"
    else:
        holds = "no round (emptied, or its header only)"
    if exported is None:  # no record, or an export of an earlier version: it had rounds
        if found.rounds or not (run_dir / MANIFEST).is_file():
            return None
        return f"its rounds, but the log holds {holds}"
    built = f"its rounds up to round {exported.next_round - 1} (as {EXPORTED_FROM} records)"
    if found.next_round < exported.next_round:
        return f"{built}, but the log holds {holds}"
    repaired = found.moved_from is not None and found.moved_from < exported.next_round
    if found.digest_at == exported.sha256 or repaired:  # --repair-log said what it moved
        return None
    return f"{built}, but the log holds other rounds up to there (their hash differs)"
