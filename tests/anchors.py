"""Where the reference data lives: `../shared/anchors/` beside the repository (CI has it).

Never copied into the repo; tests that need a file skip when it is absent. A checkout elsewhere
(a git worktree) names the folder with SELF_INSTRUCT_ANCHORS.
"""

import os
from pathlib import Path

_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "anchors"
ANCHORS = Path(os.environ.get("SELF_INSTRUCT_ANCHORS", _BESIDE))
PAPER_SEEDS = ANCHORS / "self_instruct" / "seed_tasks.jsonl"
USER_ORIENTED = ANCHORS / "self_instruct" / "user_oriented_instructions.jsonl"
TGI_OPENAPI = ANCHORS / "tgi" / "openapi.json"
PAPER_TEMPLATES = ANCHORS / "self_instruct" / "paper_prompt_templates.json"
PAPER_CODE = ANCHORS / "self_instruct" / "code" / "self_instruct"
