"""The options a run was made with, read back from its folder (for `--resume` and its messages).

`generate` stores every option in `DIR/.self-instruct/options.json` (cli/resume.py); a run
started through the builder has only the run log's copies of the options that decide the data.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from self_instruct.config import PipelineConfig
from self_instruct.layout import CONFIG_FILE, LOG_FILE, OPTIONS_FILE, RUN_DIR
from self_instruct.runlog.file import scan


def stored_options(folder: Path) -> dict[str, Any]:
    """The options a run was made with.

    A run started through the builder has no options file: its `config.json` (the options that
    decide the data) is the next best thing, and the run log's header (the same options) the
    last, when both files were deleted.
    """
    run_dir = folder / RUN_DIR
    stored: Any = None
    for path in (run_dir / OPTIONS_FILE, run_dir / CONFIG_FILE):
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            break
        except (OSError, ValueError):
            continue
    else:
        header = scan(run_dir / LOG_FILE).header
        stored = header["identity"] if header else {}
    names = {f.name for f in fields(PipelineConfig)}
    return {k: v for k, v in stored.items() if k in names} if isinstance(stored, dict) else {}
