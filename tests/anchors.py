"""Where the reference data lives: `../shared/anchors/` beside the repository (CI has it).

Never copied into the repo; tests that need a file skip when it is absent.
"""

from pathlib import Path

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"
PAPER_SEEDS = ANCHORS / "self_instruct" / "seed_tasks.jsonl"
USER_ORIENTED = ANCHORS / "self_instruct" / "user_oriented_instructions.jsonl"
TGI_OPENAPI = ANCHORS / "tgi" / "openapi.json"
