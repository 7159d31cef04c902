"""`self-instruct generate | push | stats`: the command line.

Options are the dataclass fields of `PipelineConfig`, `GenerateArguments` and `PushConfig`, read by
`transformers.HfArgumentParser`, so `--help` shows each option's help and real default, and
`--config run.yaml` works as in TRL's scripts. Heavy imports wait until a command runs.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import PipelineConfig


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that are a user's mistake or a broken environment: a message, not a traceback."""
    from .backends.http import BackendError
    from .backends.transformers import ModelNotFoundError
    from .config import ConfigError
    from .export import OutputFolderError
    from .hub import PushError
    from .previous import PreviousVersionError
    from .runlog import RunConfigMismatchError
    from .seeds import SeedFileError

    return (
        RunStoppedError,
        ConfigError,
        SeedFileError,
        OutputFolderError,
        RunConfigMismatchError,
        PreviousVersionError,
        ModelNotFoundError,
        PushError,
        BackendError,
    )


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that `kill PID` stops a run just as cleanly."""


class RunStoppedError(RuntimeError):
    """The environment stopped a run (disk full, folder gone); its finished rounds are kept."""


def _cause(err: BaseException | None, types) -> BaseException | None:
    """`err` or the error behind it: `datasets` wraps what a generator raises in its own error."""
    while err is not None and not isinstance(err, types):
        err = err.__cause__
    return err


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_inputs(config: PipelineConfig) -> None:
    """Load the seeds and the model before --output is touched (--overwrite empties it)."""
    from . import pipeline
    from .seeds import SeedFileError, load_seeds

    try:
        load_seeds(config.seeds)
    except OSError as err:  # what permission bits or a failing disk refuse
        raise SeedFileError(f"{config.seeds}: cannot read the seed file ({err.strerror})") from err
    pipeline.load_backend(config).close()  # transformers caches the loaded model for the run


def _stopped(folder: Path, argv: Sequence[str], why: str) -> str:
    """Where a stopped run stands, and the command that continues it."""
    from .export import CARD, RUN_DIR
    from .runlog import LOG_FILE, read_log

    kept = sum(r["type"] == "instruction" for r in read_log(folder / RUN_DIR))
    export = "still holds its previous export" if (folder / CARD).exists() else "has no export yet"
    return (
        f"{why}. Every finished round is kept in {folder / RUN_DIR / LOG_FILE} ({kept} "
        f"instructions); a round cut short is redone on resume. {folder} {export}.\n"
        f"To continue: {_resume_command(argv)}"
    )


def _resume_command(argv: Sequence[str]) -> str:
    """The same command with --resume (and without --overwrite, which would delete the run)."""
    if argv[:1] == ["--config"]:
        return (
            f"set `resume: true` in {argv[1]}, then run self-instruct generate --config {argv[1]}"
        )
    kept: list[str] = []
    flag = False
    for arg in argv:
        if flag and arg.lower() in ("true", "false", "yes", "no", "1", "0"):
            flag = False
            continue
        flag = arg in ("--resume", "--overwrite")
        if not flag and not arg.startswith(("--resume=", "--overwrite=")):
            kept.append(arg)
    return shlex.join(["self-instruct", "generate", *kept, "--resume"])


def _describe(err: OSError) -> str:
    return f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)


_GENERATE_EXAMPLES = """examples:
  self-instruct generate --num-instructions 40 --output my-data
  self-instruct generate --seeds my_seeds.jsonl --model ./my-checkpoint --output my-data
  self-instruct generate --backend openai --endpoint http://gpu1:8000 --endpoint http://gpu2:8000 \\
      --model Qwen/Qwen2.5-7B-Instruct --num-instructions 5000 --output big-run
  self-instruct generate ... --output my-data --resume      # continue a stopped run

then: datasets.load_dataset("my-data", "instances")"""


@dataclass
class GenerateArguments:
    """Where the data goes."""

    output: str = field(
        default="self-instruct-data",
        metadata={"help": "Folder to write, laid out like a Hub dataset repo (card + Parquet)."},
    )
    resume: bool = field(
        default=False, metadata={"help": "Continue the run already in --output where it stopped."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Delete whatever --output holds before starting."}
    )
    push_to_hub: str | None = field(
        default=None,
        metadata={"help": "Also push the result as a new version (tag vN) of this Hub dataset."},
    )
    quiet: bool = field(
        default=False,
        metadata={"help": "No progress bar and errors only (also from datasets and transformers)."},
    )
    verbose: bool = field(
        default=False,
        metadata={
            "help": "Info lines too (run directory, each round). The default level can also be "
            "set with SELF_INSTRUCT_VERBOSITY=debug|info|warning|error."
        },
    )


def _parser(dataclasses: tuple, prog: str, description: str, epilog: str | None = None):
    import argparse

    from transformers import HfArgumentParser

    class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """Keeps the examples' line breaks and shows every option's default."""

    return HfArgumentParser(
        dataclasses, prog=prog, description=description, epilog=epilog, formatter_class=Formatter
    )


def _parse(parser, argv: Sequence[str]) -> tuple:
    if len(argv) == 2 and argv[0] == "--config":
        return parser.parse_yaml_file(argv[1])
    return parser.parse_args_into_dataclasses(args=list(argv))


def generate(argv: Sequence[str]) -> None:
    """Run the pipeline into a folder, print the funnel, optionally push."""
    from .export import prepare_output

    parser = _parser(
        (PipelineConfig, GenerateArguments),
        "self-instruct generate",
        "Bootstrap instructions and instances from seed tasks with a language model (Self-Instruct"
        ", Wang et al. 2023), filter them, and write a dataset folder.",
        _GENERATE_EXAMPLES,
    )
    config, args = _parse(parser, argv)
    _set_verbosity(args)
    folder = Path(args.output)
    _check_inputs(config)
    prepare_output(folder, resume=args.resume, overwrite=args.overwrite)
    start = time.monotonic()
    result = _export(config, folder, argv)
    print(_summary(result, time.monotonic() - start))
    if args.push_to_hub:
        from .hub import push_folder

        pushed = push_folder(folder, args.push_to_hub)
        print(f"Pushed {pushed.repo_id}@{pushed.tag} ({pushed.commit_url})")


def _set_verbosity(args: GenerateArguments) -> None:
    """--quiet / --verbose, as transformers' and datasets' set_verbosity_* do for their logs."""
    import logging

    from . import verbosity

    if args.quiet and args.verbose:
        sys.exit("self-instruct generate: error: --quiet and --verbose contradict each other")
    if args.quiet:
        verbosity.set_verbosity(logging.ERROR)
        verbosity.disable_progress_bars()
        verbosity.quiet_other_libraries()
    else:
        verbosity.set_verbosity(logging.INFO if args.verbose else verbosity.default_level())
    if not sys.stderr.isatty():  # a log file or CI: plain lines, no library's cursor codes
        verbosity.disable_other_progress_bars()


def _export(config: PipelineConfig, folder: Path, argv: Sequence[str]):
    """Run the export; a signal or a failing disk ends it with a message on how to resume."""
    from .export import export

    try:
        with _sigterm_interrupts():
            return export(config, folder, command="self-instruct generate " + " ".join(argv))
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        why = "Stopped by SIGTERM" if terminated else "Interrupted"
        print(f"\n{_stopped(folder, argv, why)}", file=sys.stderr)
        sys.exit(128 + (signal.SIGTERM if terminated else signal.SIGINT))
    except Exception as err:
        os_error = _cause(err, OSError)
        if os_error is None or _cause(err, expected_errors()) is not None:
            raise
        raise RunStoppedError(
            _stopped(folder, argv, f"Cannot go on: {_describe(os_error)}")
        ) from err


def _summary(result, seconds: float) -> str:
    lines = [f"\nDone in {seconds / 60:.1f} min. Filtering funnel:"]
    for stage, funnel in result.funnel.items():
        rejected = ", ".join(f"{k} {v}" for k, v in funnel["rejected"].items()) or "none"
        imported = f"  imported {funnel['imported']}" if funnel.get("imported") else ""
        lines.append(
            f"  {stage:<12} generated {funnel['generated']:>6}  kept {funnel['kept']:>6}"
            f"  rejected: {rejected}{imported}"
        )
    rows = ", ".join(f"{name} {n}" for name, n in result.num_rows.items())
    lines += [
        f"Rows: {rows}",
        f"Data: {result.folder.resolve()} (card: {result.folder / 'README.md'})",
        f'Load: datasets.load_dataset("{result.folder}", "instances")',
    ]
    return "\n".join(lines)


def push(argv: Sequence[str]) -> None:
    """`self-instruct push DIR REPO_ID [--tag T] [--private] [--revision B] [--create-pr]`."""
    from .hub import PushConfig, push_main

    parser = _parser((PushConfig,), "self-instruct push", "Push a generated folder as a version.")
    positional = [a for a in argv[:2] if not a.startswith("-")]
    named = ["--folder", positional[0]] if positional else []
    named += ["--repo_id", positional[1]] if len(positional) > 1 else []
    (config,) = _parse(parser, [*named, *argv[len(positional) :]])
    push_main(config)


def stats(argv: Sequence[str]) -> None:
    """`self-instruct stats DATA`: the paper's Table 1 for a seed file, folder or Hub dataset."""
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.exit(
            "usage: self-instruct stats DATA\n  DATA: a seed_tasks.jsonl-style file, a folder "
            "written by `self-instruct generate`, or a Hub dataset id"
        )
    from .dataset_card import stats_main

    print(stats_main(argv[0]))


COMMANDS = {"generate": generate, "push": push, "stats": stats}
_USAGE = """usage: self-instruct {generate,push,stats} [options]

  generate  bootstrap a Self-Instruct dataset from seed tasks with a model
  push      upload a generated folder to the Hub as a new version (tag)
  stats     print the paper's Table 1 statistics for a dataset

`self-instruct COMMAND --help` explains each command's options and defaults."""


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(_USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    try:
        COMMANDS[argv[0]](argv[1:])
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if (expected := _cause(err, expected_errors())) is not None:
            sys.exit(f"self-instruct {argv[0]}: error: {expected}")
        if (os_error := _cause(err, OSError)) is not None:  # a file or disk problem, not a bug
            sys.exit(f"self-instruct {argv[0]}: error: {_describe(os_error)}")
        raise


if __name__ == "__main__":
    main()
