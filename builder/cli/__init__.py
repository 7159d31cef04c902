"""`self-instruct generate | push | stats | audit`: the command line.

    args.py      options from dataclass fields: dash spelling, no abbreviations, --config YAML
    checks.py    what `generate` checks before a model loads: folder, seeds, Hub, endpoints
    resume.py    a run folder's stored options, how far it got, the command that continues it
    generate.py  `generate`: checks, model, run, summary, push; stop messages
    push.py      `push` and `stats`
    audit.py     `audit` (the audit itself, sample, judge and summary: ../audit/)
    errors.py    how a command fails: one redacted line, the errors that are no bug

Heavy imports wait until a command runs, so `--help` and the checks answer in seconds.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from self_instruct.about import __version__
from self_instruct.cli.errors import cause, expected_errors, fail, os_error_message

if TYPE_CHECKING:
    from self_instruct.backends import BackendLoader


def _commands(
    load_backend: BackendLoader | None, load_judge: BackendLoader | None
) -> dict[str, Callable[[list[str]], None]]:
    from self_instruct.cli.audit import audit
    from self_instruct.cli.generate import generate
    from self_instruct.cli.push import push, stats

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
        from self_instruct.hub.client import hub_timeout, use_hub_timeout

        use_hub_timeout(hub_timeout())  # huggingface_hub's client would wait for ever
        commands[argv[0]](argv[1:])
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if (expected := cause(err, expected_errors())) is not None:
            fail(argv[0], str(expected))
        if (os_error := cause(err, OSError)) is not None:  # a file or disk problem, not a bug
            fail(argv[0], os_error_message(os_error))
        raise
