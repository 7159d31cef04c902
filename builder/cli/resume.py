"""What a run folder remembers: its options, how far it got, and the command that continues it.

`generate` stores every option of a run in `DIR/.self-instruct/options.json` before the first
round, and again on each resume, local paths made absolute (`config.absolute_paths`: a run started
in one directory resumes from any other). `--resume` starts from those: a bare
`self-instruct generate --output DIR --resume` continues the run as it was started, and an
option retyped on the command line must either be one that only says when to stop or where to
send requests (`RESUMABLE_OPTIONS`), or equal the stored value.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from self_instruct.config import RESUMABLE_OPTIONS, PipelineConfig, absolute_paths
from self_instruct.layout import CARD, LOG_FILE, OPTIONS_FILE, RUN_DIR
from self_instruct.runlog import read_log, stored_options, summarize
from self_instruct.runlog.records import ROUND
from self_instruct.utils.ranges import flag


def save_options(folder: Path, config: PipelineConfig) -> None:
    """Store every option of the run (atomically: a reader never sees half a file)."""
    from self_instruct.utils.durable import write_durably

    path = folder / RUN_DIR / OPTIONS_FILE
    path.parent.mkdir(exist_ok=True)
    write_durably(path, json.dumps(asdict(config), indent=2, sort_keys=True).encode("utf-8"))


def new_config(config: PipelineConfig) -> PipelineConfig:
    """The options of a new run as they are stored: its local paths absolute."""
    return replace(config, **absolute_paths(asdict(config), config.backend))


def resumed_config(folder: Path, given: dict[str, Any]) -> PipelineConfig:
    """The stored options, updated by the resumable ones given; refuse any other change.

    A path given is read from the current directory, as for a new run; one stored by a run of
    an earlier version may be relative, and is kept as it is (the run log's header holds it).
    Raises RunConfigMismatchError listing each refused option as `--name: stored -> given`.
    """
    from self_instruct.runlog.log import RunConfigMismatchError

    stored = {**asdict(PipelineConfig()), **stored_options(folder)}
    given = absolute_paths(given, given.get("backend", stored["backend"]))
    fixed = {k: v for k, v in given.items() if k in stored and k not in RESUMABLE_OPTIONS}
    if diffs := [f"{flag(k)}: {stored[k]!r} -> {v!r}" for k, v in fixed.items() if stored[k] != v]:
        resumable = ", ".join(flag(name) for name in RESUMABLE_OPTIONS)
        raise RunConfigMismatchError(
            f"--resume: {folder} holds a run made with other options:\n  "
            + "\n  ".join(diffs)
            + f"\n--resume continues a run with its own options; only {resumable} may change. "
            "Drop the others, or choose another --output (or --overwrite to discard the run)."
        )
    return PipelineConfig(**{**stored, **{k: v for k, v in given.items() if k in stored}})


def resume_command(folder: Path, push_to_hub: str | None) -> str:
    """The command that continues the run in `folder`: its options are stored with it."""
    words = ["self-instruct", "generate", "--output", str(folder), "--resume"]
    words += ["--push-to-hub", push_to_hub] if push_to_hub else []
    return shlex.join(words)


def progress(folder: Path) -> str:
    """How far the run in `folder` got, in words: instructions kept, rounds logged."""
    summary = summarize(read_log(folder / RUN_DIR))
    kept = summary.accepted + summary.imported
    quota = stored_options(folder).get("num_instructions")
    kept, of = (min(kept, quota), f" of {quota}") if quota else (kept, "")  # surplus: not kept
    log = folder / RUN_DIR / LOG_FILE
    return f"{kept}{of} instructions kept in {summary.rounds} rounds ({log})"


def has_export(folder: Path) -> bool:
    """Whether the folder holds an export (a card naming data files) from this run or before."""
    return (folder / CARD).exists()


def has_rounds(folder: Path) -> bool:
    """Whether the run log holds at least one finished round."""
    return any(record["type"] == ROUND for record in read_log(folder / RUN_DIR))
