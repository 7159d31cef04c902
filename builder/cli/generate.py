"""`self-instruct generate`: checks, model, run, summary, push.

The order is what makes a mistake cheap: first every check that needs no model (checks.py),
then the model, and only then is --output prepared (with --overwrite, emptied) and the run
started. A run stopped by a signal or a failing disk ends with the command that continues it; a
run that fails before its first round is logged leaves nothing behind that blocks a retry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from self_instruct.backends import BackendLoader
from self_instruct.backends.base import Backend
from self_instruct.cli import checks, resume
from self_instruct.cli.args import make_parser, parse
from self_instruct.cli.errors import (
    RunStoppedError,
    cause,
    expected_errors,
    fail,
    os_error_message,
)
from self_instruct.cli.options import GENERATE_OPTIONS
from self_instruct.config import PipelineConfig
from self_instruct.errors import ConfigError
from self_instruct.layout import CARD, RUN_DIR
from self_instruct.prompting.prompts import load_templates
from self_instruct.runlog.lock import locked
from self_instruct.schemas import check_structured_installed

EXAMPLES = """examples:
  self-instruct generate --num-instructions 40 --output my-data
  self-instruct generate --seeds my_seeds.jsonl --model ./my-checkpoint --output my-data
  self-instruct generate --backend openai --endpoint http://gpu1:8000 http://gpu2:8000 \\
      --model Qwen/Qwen2.5-7B-Instruct --num-instructions 5000 --output big-run
  self-instruct generate --config run.yaml --seed 7     # flags override the file's values
  self-instruct generate --output my-data --resume      # continue a stopped run, same options

then: datasets.load_dataset("my-data", "instances")

exit status: 0 done; 75 requests failed for good after every retry (the round they belong to
is not logged: run again with --resume, later, to send it again); 130 Ctrl-C, 143 SIGTERM
(finished rounds kept); 2 a usage error; 1 any other error."""

EXIT_REQUESTS_FAILED = 75  # sysexits.h EX_TEMPFAIL: try again later (with --resume)
COMMAND = "self-instruct generate"  # what the folder's lock names to a process it refuses


@dataclass
class GenerateArguments:
    """Where the data goes."""

    output: str = field(
        default="self-instruct-data",
        metadata={"help": "Folder to write, laid out like a Hub dataset repo (card + Parquet)."},
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue the run in --output where it stopped, with the options it was "
            "started with; only options that do not change the data may be given again."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Delete the run in --output (and only the files it wrote) first."},
    )
    repair_log: bool = field(
        default=False,
        metadata={
            "help": "With --resume: move the lines of a damaged run log that do not verify aside "
            "(into .self-instruct/damaged-<time>.jsonl), keep every round that does (a damaged "
            "run header is written again from the options), then continue the run; the rounds "
            "moved aside are not generated again."
        },
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that `kill PID` stops a run just as cleanly."""


def generate(argv: Sequence[str], load_backend: BackendLoader | None = None) -> None:
    """Run the pipeline into a folder, print the funnel, optionally push.

    `load_backend` builds the backend from the options (by default `backends.load_backend`);
    tests and benchmarks pass one that returns a scripted stand-in.
    """
    if load_backend is None:
        from self_instruct.backends import load_backend
    parser = make_parser(
        (PipelineConfig, GenerateArguments),
        "self-instruct generate",
        "Bootstrap instructions and instances from seed tasks with a language model (Self-Instruct"
        ", Wang et al. 2023), filter them, and write a dataset folder.",
        EXAMPLES,
        config_file=True,
        groups=GENERATE_OPTIONS,
    )
    (config, args), given = parse(parser, argv)
    _set_verbosity(args)
    if args.repair_log and not args.resume:
        raise ConfigError("--repair-log repairs the run already in --output: add --resume")
    folder = Path(args.output)
    # A second process is refused before it loads a model or --overwrite deletes anything.
    with locked(folder / RUN_DIR, only_if_exists=True, command=COMMAND):
        checks.check_output(
            folder, resume=args.resume, overwrite=args.overwrite, push_to_hub=args.push_to_hub
        )
        # A new run's paths are stored absolute; a resumed run's come from what it stored.
        config = resume.resumed_config(folder, given) if args.resume else resume.new_config(config)
        checks.check_seeds(config)
        load_templates(config.prompt_templates)
        if config.structured:  # before a model loads: the extra may be missing
            check_structured_installed(config.backend)
        if (answering := checks.check_endpoints(config)) != config.endpoint:
            config = dataclasses.replace(config, endpoint=answering)
        if args.push_to_hub:
            checks.check_hub(args.push_to_hub)
        _load_model(config, load_backend)
        start = time.monotonic()
        result = _run(config, args, folder, argv, load_backend)
        print(_summary(result, time.monotonic() - start))


def _set_verbosity(args: GenerateArguments) -> None:
    """--quiet / --verbose, as transformers' and datasets' set_verbosity_* do for their logs."""
    import logging

    from self_instruct.utils import verbosity

    if args.quiet and args.verbose:
        raise ConfigError("--quiet and --verbose contradict each other: give one")
    if args.quiet:
        verbosity.set_verbosity(logging.ERROR)
        verbosity.disable_progress_bars()
        verbosity.quiet_other_libraries()
    else:
        verbosity.set_verbosity(logging.INFO if args.verbose else verbosity.default_level())
    if not sys.stderr.isatty():  # a log file or CI: plain lines, no library's cursor codes
        verbosity.disable_other_progress_bars()


def _load_model(config: PipelineConfig, load_backend: BackendLoader) -> None:
    """Load the model before --output is touched (--overwrite empties it), and check the seeds
    fit its context; the model stays cached for the run."""
    from self_instruct.generation.seed_lengths import check_seed_lengths
    from self_instruct.prompting.seeds import load_seeds

    backend = load_backend(config)
    try:
        check_seed_lengths(load_seeds(config.seeds), backend, config)
    finally:
        backend.close()


def _run(
    config: PipelineConfig,
    args: GenerateArguments,
    folder: Path,
    argv: Sequence[str],
    load_backend: BackendLoader,
):
    """Prepare the folder, run and push under the folder's lock; clean up after a run that
    failed before its first round."""
    from self_instruct.export.folder import prepare_output

    created = not folder.exists()
    if removed := prepare_output(folder, resume=args.resume, overwrite=args.overwrite):
        print(f"--overwrite removed from {folder}: {', '.join(removed)}", file=sys.stderr)
    with locked(folder / RUN_DIR, command=COMMAND):  # a new folder's, or an emptied one's
        try:
            resume.save_options(folder, config)
            if args.repair_log:
                print(_repair(config, folder))
            backend = load_backend(config)
            try:
                result = _export(config, args, folder, argv, backend)
            finally:
                backend.close()  # ends the requests a finished run left in flight
        except RunStoppedError:  # its message gives the resume command: keep what it resumes
            raise
        except Exception:
            if not args.resume and not resume.has_rounds(folder):
                _remove_empty_run(folder, created)
            raise
        if args.push_to_hub:
            from self_instruct.hub.push import push_folder

            pushed = push_folder(folder, args.push_to_hub)
            print(f"Pushed {pushed.repo_id}@{pushed.tag} ({pushed.commit_url})")
        return result


def _repair(config: PipelineConfig, folder: Path) -> str:
    from self_instruct.generation.pipeline import Pipeline

    return f"--repair-log: {Pipeline(config, folder / RUN_DIR, progress=False).log.repair()}"


def _remove_empty_run(folder: Path, created: bool) -> None:
    """Nothing was generated: leave the folder as it was, so the same command can run again."""
    shutil.rmtree(folder / RUN_DIR, ignore_errors=True)
    if created:
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _export(
    config: PipelineConfig,
    args: GenerateArguments,
    folder: Path,
    argv: Sequence[str],
    backend: Backend,
):
    """Run into the folder; a signal, a failing disk, requests that failed for good or a server
    that cannot go on (refused requests, every endpoint down) end it with a message on how to
    resume."""
    from self_instruct.backends.errors import BackendError, EndpointsUnavailableError
    from self_instruct.generation.jobs import RequestsFailedError
    from self_instruct.run import run_to_folder

    command = "self-instruct generate " + " ".join(argv)
    try:
        with _sigterm_interrupts():
            return run_to_folder(config, folder, command=command, backend=backend)
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        why = "Stopped by SIGTERM" if terminated else "Interrupted"
        print(f"\n{_stopped(folder, args, why)}", file=sys.stderr)
        sys.exit(128 + (signal.SIGTERM if terminated else signal.SIGINT))
    except Exception as err:
        # Failed for good after every retry, in a round or with every server down, before the
        # first round or after it: a status of its own, and the run kept for --resume.
        if (failed := cause(err, (RequestsFailedError, EndpointsUnavailableError))) is not None:
            why = f"Stopped: {str(failed).rstrip('.')}"
            fail("generate", _stopped(folder, args, why), EXIT_REQUESTS_FAILED)
        if (backend_error := cause(err, BackendError)) is not None:
            if not resume.has_rounds(folder):  # nothing to resume: _run leaves no folder behind
                raise
            why = f"Stopped: {str(backend_error).rstrip('.')}"
            raise RunStoppedError(_stopped(folder, args, why)) from err
        os_error = cause(err, OSError)
        if os_error is None or cause(err, expected_errors()) is not None:
            raise
        why = f"Cannot go on: {os_error_message(os_error)}"
        raise RunStoppedError(_stopped(folder, args, why)) from err


def _stopped(folder: Path, args: GenerateArguments, why: str) -> str:
    """Where a stopped run stands, and the command that continues it."""
    export = "still holds its previous export" if resume.has_export(folder) else "has no export yet"
    return (
        f"{why}. Every finished round is kept: {resume.progress(folder)}; a round cut short is "
        f"redone on resume. {folder} {export}.\n"
        f"To continue: {resume.resume_command(folder, args.push_to_hub)}"
    )


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
        f"Data: {result.folder.resolve()} (card: {result.folder / CARD})",
        f'Load: datasets.load_dataset("{result.folder}", "instances")'
        f"  (configurations: {', '.join(result.num_rows)})",
    ]
    return "\n".join(lines)
