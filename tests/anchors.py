"""Where the reference data lives: `../shared/anchors/` beside the repository (CI has it).

Never copied into the repo; a test that needs a file skips when it is absent, and its reason says
which file to put where (`absent`). A checkout elsewhere (a git worktree) names the folder with
SELF_INSTRUCT_ANCHORS; naming a folder that does not exist hides the anchors, as on a bare clone
(`make test-bare` does that).
"""

import os
from pathlib import Path

import pytest

ANCHORS_ENV = "SELF_INSTRUCT_ANCHORS"
_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "anchors"
ANCHORS = Path(os.environ.get(ANCHORS_ENV, _BESIDE))
PAPER_SEEDS = ANCHORS / "self_instruct" / "seed_tasks.jsonl"
USER_ORIENTED = ANCHORS / "self_instruct" / "user_oriented_instructions.jsonl"
TGI_OPENAPI = ANCHORS / "tgi" / "openapi.json"
PAPER_TEMPLATES = ANCHORS / "self_instruct" / "paper_prompt_templates.json"
PAPER_CODE = ANCHORS / "self_instruct" / "code" / "self_instruct"
# Each folder of the anchors is one public repository, at the commit the tests were checked with.
SOURCES = {
    "self_instruct": "github.com/yizhongw/self-instruct at 0b26ccaa",
    "stanford_alpaca": "github.com/tatsu-lab/stanford_alpaca at 761dc5bf",
    "tgi": "github.com/huggingface/text-generation-inference at db931fcf (docs/openapi.json)",
}


def absent(path: Path) -> str:
    """A skip reason for a missing anchor: the file, where it comes from, where to put it."""
    top = path.relative_to(ANCHORS).parts[0]
    return (
        f"reference data absent: {path} (from {SOURCES[top]}); put it there, or set "
        f"{ANCHORS_ENV} to the folder that holds {top}/"
    )


def needs(*paths: Path) -> pytest.MarkDecorator:
    """Skip the test unless every one of `paths` is here."""
    missing = [path for path in paths if not path.exists()]
    return pytest.mark.skipif(bool(missing), reason=absent(missing[0]) if missing else "")


def skip_unless_present(path: Path) -> None:
    """Inside a test: skip it here when `path` is absent."""
    if not path.exists():
        pytest.skip(absent(path))
