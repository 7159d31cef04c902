"""`self-instruct generate | push | stats | audit`: the command line.

    args.py      options from dataclass fields: dash spelling, no abbreviations, --config YAML
    checks.py    what `generate` checks before a model loads: folder, seeds, Hub, endpoints
    resume.py    a run folder's stored options, how far it got, the command that continues it
    generate.py  `generate`: checks, model, run, summary, push; stop messages
    push.py      `push` and `stats`
    audit.py     `audit` (the audit itself, sample, judge and summary, is ../audit.py)

Heavy imports wait until a command runs, so `--help` and the checks answer in seconds.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from .. import __version__
from ..causes import causes

if TYPE_CHECKING:
    from ..backends import BackendLoader


class RunStoppedError(RuntimeError):
    """The environment stopped a run (disk full, folder gone); its finished rounds are kept."""


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that are a user's mistake or a broken environment: a message, not a traceback."""
    from ..audit import AuditError
    from ..backends.http import BackendError
    from ..backends.transformers import ModelNotFoundError
    from ..config import ConfigError
    from ..exported_from import ExportRecordError, RunLogMismatchError
    from ..files import OutputFolderError
    from ..hub import PushError
    from ..previous import PreviousVersionError
    from ..run import NothingToExportError
    from ..runlock import RunDirLockedError
    from ..runlog import RunConfigMismatchError, RunLogDamagedError, StoredConfigError
    from ..seeds import SeedFileError

    return (
        RunStoppedError,
        ConfigError,
        SeedFileError,
        OutputFolderError,
        RunConfigMismatchError,
        RunLogDamagedError,
        RunLogMismatchError,
        ExportRecordError,
        StoredConfigError,
        RunDirLockedError,
        NothingToExportError,
        PreviousVersionError,
        ModelNotFoundError,
        PushError,
        BackendError,
        AuditError,
    )


def cause(err: BaseException | None, types) -> BaseException | None:
    """`err` or the first error behind it of `types`: `datasets` wraps what a generator raises
    in its own error. A chain that loops back ends the walk (see causes.py)."""
    return next((e for e in causes(err) if isinstance(e, types)), None)


def describe(err: OSError) -> str:
    return f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)


def _commands(
    load_backend: BackendLoader | None, load_judge: BackendLoader | None
) -> dict[str, Callable[[list[str]], None]]:
    from .audit import audit
    from .generate import generate
    from .push import push, stats

    run = functools.partial(generate, load_backend=load_backend)
    judge = functools.partial(audit, load_backend=load_judge)
    return {"generate": run, "push": push, "stats": stats, "audit": judge}


USAGE = """usage: self-instruct {generate,push,stats,audit} [options]

  generate  bootstrap a Self-Instruct dataset from seed tasks with a model
  push      upload a generated folder to the Hub as a new version (tag)
  stats     print the paper's Table 1 statistics for a dataset
  audit     have a judge model review a sample, as the paper's Table 2

`self-instruct COMMAND --help` explains each command's options and defaults;
`self-instruct --version` prints the version."""


def main(
    argv: Sequence[str] | None = None,
    *,
    load_backend: BackendLoader | None = None,
    load_judge: BackendLoader | None = None,
) -> None:
    """`self-instruct ARGV`; `load_backend` replaces the backend `generate` builds from its
    options, `load_judge` the judge of `audit` (tests and benchmarks pass stand-ins)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"self-instruct {__version__}")
        return
    commands = _commands(load_backend, load_judge)
    if not argv or argv[0] not in commands:
        asked = argv[:1] in (["-h"], ["--help"])
        print(USAGE, file=sys.stdout if asked else sys.stderr)
        sys.exit(0 if asked else 2)
    try:
        from ..hub_client import hub_timeout, use_hub_timeout

        use_hub_timeout(hub_timeout())  # huggingface_hub's client would wait for ever
        commands[argv[0]](argv[1:])
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if (expected := cause(err, expected_errors())) is not None:
            fail(argv[0], str(expected))
        if (os_error := cause(err, OSError)) is not None:  # a file or disk problem, not a bug
            fail(argv[0], describe(os_error))
        raise


def fail(command: str, message: str, status: int = 1) -> NoReturn:
    """End `self-instruct COMMAND` with one error line. The last line of defence for secrets:
    a message may quote a server, which may quote our key (see redaction.py)."""
    from ..redaction import redact

    line = f"self-instruct {command}: error: {redact(message)}"
    if status == 1:
        sys.exit(line)  # the exception carries the line, for callers of main() that catch it
    print(line, file=sys.stderr)
    sys.exit(status)
