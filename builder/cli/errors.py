"""How a command ends when something goes wrong: one line that says what to do, never a traceback
for a user's mistake or a broken environment, and never a secret."""

from __future__ import annotations

import sys
from typing import NoReturn

from self_instruct.utils.causes import causes


class RunStoppedError(RuntimeError):
    """The environment stopped a run (disk full, folder gone); its finished rounds are kept."""


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that are a user's mistake or a broken environment: a message, not a traceback."""
    from self_instruct.audit.review import AuditError
    from self_instruct.backends.errors import BackendError
    from self_instruct.backends.transformers import ModelNotFoundError
    from self_instruct.errors import ConfigError, OutputFolderError
    from self_instruct.hub.version_files import PushError
    from self_instruct.prompting.seeds import SeedFileError
    from self_instruct.run import NothingToExportError
    from self_instruct.runlog.exported_from import ExportRecordError, RunLogMismatchError
    from self_instruct.runlog.file import RunLogDamagedError
    from self_instruct.runlog.lock import RunDirLockedError
    from self_instruct.runlog.log import RunConfigMismatchError, StoredConfigError
    from self_instruct.runlog.previous import PreviousVersionError

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


def os_error_message(err: OSError) -> str:
    return f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)


def fail(command: str, message: str, status: int = 1) -> NoReturn:
    """End `self-instruct COMMAND` with one error line. The last line of defence for secrets:
    a message may quote a server, which may quote our key (see redaction.py)."""
    from self_instruct.utils.redaction import redact

    line = f"self-instruct {command}: error: {redact(message)}"
    if status == 1:
        sys.exit(line)  # the exception carries the line, for callers of main() that catch it
    print(line, file=sys.stderr)
    sys.exit(status)
