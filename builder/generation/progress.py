"""The one progress display of a run, updated as each request finishes.

On a terminal it is a tqdm bar of kept instructions against the quota, with an ETA and
instructions per minute, and under it two status lines: each step's requests (instruction
lists, classification, instances) done and in flight -- the scheduler runs all three at once --
and the rejections by reason. Each line is cut to the terminal's width, so that none wraps and
every redraw lands in place. Log lines (retries, endpoint cool-downs) are printed above the
display through `tqdm.contrib.logging`, never over it. When stderr is not a terminal (CI logs,
`2> file`) there are no cursor codes: one plain line per round.

Kept counts stop at the quota: the last round's surplus is shown as `beyond_quota`, as the
summary and the card count it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from collections import Counter
from typing import IO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from self_instruct.utils.verbosity import LIBRARY_LOGGER, is_progress_bar_enabled

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 0.2  # a fast server finishes hundreds of requests a second
TICK_SECONDS = 1.0  # the clock and ETA move while an in-process batch runs for a minute
_BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} kept [{elapsed}<{remaining}, {speed}]"
)


class _Bar(tqdm):
    """A tqdm bar whose `{speed}` is the run's instructions per minute (tqdm's own rate counts
    per second, or seconds per instruction when slower)."""

    speed = "0.0 instr/min"  # its first drawing, before the run's first count

    @property
    def format_dict(self):
        return {**super().format_dict, "speed": self.speed}


class RunProgress:
    """Counts of one run for display; the scheduler reports each request sent and finished.

    A request is "in flight" from the scheduler's sending it until its answer is final, waits
    for a retry included: what the run is waiting for.
    """

    def __init__(self, total: int, kept: int, enabled: bool = True, file: IO[str] | None = None):
        self.file = file or sys.stderr
        self.total, self.kept, self.initial = total, min(kept, total), min(kept, total)
        self.rejected: Counter[str] = Counter()
        self.done: Counter[str] = Counter()  # requests answered, per step
        self.in_flight: Counter[str] = Counter()
        enabled = enabled and is_progress_bar_enabled()
        terminal = self.file.isatty()
        self.plain = enabled and not terminal
        shown = enabled and terminal
        self._bar = _Bar(
            total=total,
            initial=self.kept,
            desc="Instructions",
            file=self.file,
            disable=not shown,
            smoothing=0,  # the mean rate of the whole run: rounds are lumpy
            bar_format=_BAR_FORMAT,
            dynamic_ncols=True,
        )
        # Status lines under the bar: a tqdm "bar" showing only its description, as tqdm.write
        # clears and redraws every bar of the display around a log line.
        self._lines = [
            tqdm(file=self.file, disable=not shown, position=n, bar_format="{desc}", leave=False)
            for n in (1, 2)
        ]
        self._start = self._last_refresh = time.monotonic()
        self._stack = contextlib.ExitStack()
        self._stopped = threading.Event()

    def __enter__(self) -> RunProgress:
        if not self._bar.disable:
            library = logging.getLogger(LIBRARY_LOGGER)
            loggers = [library] if library.handlers else [logging.root]
            self._stack.enter_context(logging_redirect_tqdm(loggers, tqdm_class=type(self._bar)))
        for bar in (self._bar, *self._lines):
            self._stack.enter_context(bar)
        self._show()
        if not self._bar.disable:
            ticker = threading.Thread(target=self._tick, name="progress-clock", daemon=True)
            ticker.start()
            self._stack.callback(ticker.join)
            self._stack.callback(self._stopped.set)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    def _tick(self) -> None:
        """Redraw every TICK_SECONDS: no request may finish for a whole batch of a CPU model,
        and the elapsed time and ETA must not stand still meanwhile."""
        while not self._stopped.wait(TICK_SECONDS):
            self._refresh(force=True)

    def sent(self, step: str, n: int = 1) -> None:
        """`n` requests of `step` went to the backend."""
        self.done[step] += 0  # a step shows from its first request on
        self.in_flight[step] += n
        self._refresh()

    def finished(self, step: str, n: int = 1) -> None:
        """`n` requests of `step` have their final answer (or failed for good)."""
        self.in_flight[step] -= n
        self.done[step] += n
        self._refresh()

    def round_done(self, round_: int, accepted: int, rejected: Counter[str]) -> None:
        """Add a finished round's acceptances (capped at the quota) and rejections by reason."""
        counted = min(accepted, self.total - self.kept)
        self.rejected.update(rejected)
        self.rejected["beyond_quota"] += accepted - counted
        self.rejected += Counter()  # drop zero counts
        self.kept += counted
        self._bar.speed = self.speed()  # before update(): its redraw shows the new rate
        self._bar.update(counted)
        self._refresh(force=True)
        if self.plain:
            print(f"round {round_}: {self.describe()}", file=self.file, flush=True)
        else:  # on a terminal the bar shows it; --verbose keeps a line per round above it
            logger.info("round %d: %s", round_, self.describe())

    def per_minute(self) -> float:
        return 60 * (self.kept - self.initial) / max(time.monotonic() - self._start, 1e-9)

    def speed(self) -> str:
        return f"{self.per_minute():.1f} instr/min"

    def requests(self) -> str:
        steps = [  # a copy first: the clock's thread reads while the run counts
            f"{step} {done}"
            + (f" ({flight} in flight)" if (flight := self.in_flight[step]) else "")
            for step, done in list(self.done.items())
        ]
        return "requests: " + (", ".join(steps) or "none yet")

    def rejections(self) -> str:
        rejected = ", ".join(f"{reason} {n}" for reason, n in Counter(self.rejected).most_common())
        return f"rejected: {rejected or 'none'}"

    def describe(self) -> str:
        """The counts as one line: the plain line of a round, off a terminal."""
        kept = f"kept {self.kept}/{self.total}"
        return f"{self.requests()} | {kept} | {self.rejections()} | {self.speed()}"

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._bar.disable or not (force or now - self._last_refresh >= REFRESH_SECONDS):
            return
        self._last_refresh = now
        self._show()

    def _show(self) -> None:
        """Redraw the bar and its status lines, each cut to the terminal's width."""
        if self._bar.disable:
            return
        width = _width(self.file) - 1
        for line, text in zip(self._lines, (self.requests(), self.rejections()), strict=True):
            text = f"  {text}"
            line.set_description_str(text if len(text) <= width else text[: width - 3] + "...")
        self._bar.speed = self.speed()
        self._bar.refresh()


def _width(file: IO[str]) -> int:
    """Columns of the terminal `file` writes to (stdout may be redirected while stderr is not)."""
    try:
        return os.get_terminal_size(file.fileno()).columns
    except (AttributeError, OSError, ValueError):  # no file descriptor, or not a terminal
        return shutil.get_terminal_size().columns
