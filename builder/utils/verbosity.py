"""How much a run says: log level and progress bars, by `transformers`' and `datasets`' conventions.

As in `transformers.utils.logging` and `datasets.utils.logging`: one library logger
(`self_instruct`) whose level is set with `set_verbosity(logging.INFO)` or, by default, the
`SELF_INSTRUCT_VERBOSITY` environment variable (debug, info, warning, error, critical; like
`TRANSFORMERS_VERBOSITY`), and a switch for the progress bar (`disable_progress_bars()`,
`is_progress_bar_enabled()`). The CLI maps `--quiet` to error and no bar, `--verbose` to info.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from self_instruct.utils.redaction import redact

LIBRARY_LOGGER = "self_instruct"
VERBOSITY_ENV = "SELF_INSTRUCT_VERBOSITY"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_progress_bars = True


def default_level() -> int:
    """The level `SELF_INSTRUCT_VERBOSITY` names, else warning (an unknown name is ignored)."""
    return LEVELS.get(os.environ.get(VERBOSITY_ENV, "").lower(), logging.WARNING)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (pytest and notebooks replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property decides
        pass


class _RedactingFormatter(logging.Formatter):
    """Every line without keys, tokens or URL credentials (utils/redaction.py), tracebacks included:
    what a server said reaches the log in retry warnings and errors."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def set_verbosity(level: int) -> None:
    """Log at `level` and above to stderr, through one handler of the library logger."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_RedactingFormatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # as transformers does: no second copy through the root logger
    logger.setLevel(level)


def quiet_other_libraries() -> None:
    """`--quiet` for the libraries we call too: their errors only, and no bars of theirs."""
    import datasets
    import transformers

    datasets.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    disable_other_progress_bars()


def disable_other_progress_bars() -> None:
    """No bars from the libraries we call (model loading, downloads, Arrow writes): for --quiet,
    and for a stderr that is not a terminal, where their cursor codes would litter a log."""
    import datasets
    import transformers
    from huggingface_hub.utils import disable_progress_bars as disable_hub_bars

    datasets.disable_progress_bars()
    transformers.logging.disable_progress_bar()
    disable_hub_bars()


def disable_progress_bars() -> None:
    global _progress_bars
    _progress_bars = False


def enable_progress_bars() -> None:
    global _progress_bars
    _progress_bars = True


def is_progress_bar_enabled() -> bool:
    return _progress_bars


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """`datasets`' own bars ("Generating train split", "Flattening the indices", "Creating
    parquet") off while we call it, so that the run's bar is the only one; restored after."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
