"""Two pushes to one repo at once (issue 23): one wins, the other says why, neither hangs, and
running the loser again makes the next version. Real `self-instruct push` processes against the
local Hub, whose commit endpoint holds each push until both have read the repo (a slow commit,
for certain); a lock on the folder keeps a run, an audit or another push from writing its card.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, HfApi
from local_hub import LocalHub
from test_hub_push import ALICE, REPO, load_rows, make_run
from test_push_failures import cli, one_error, tags

from self_instruct.errors import OutputFolderError
from self_instruct.hub.card_history import HISTORY_KEY
from self_instruct.hub.push import push_folder
from self_instruct.layout import RUN_DIR
from self_instruct.runlog.lock import RunDirLockedError


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with LocalHub(tmp_path / "hub", users={"alice": ALICE}) as hub:
        monkeypatch.setenv("HF_TOKEN", ALICE)
        HfApi(token=ALICE).create_repo(REPO, repo_type="dataset")
        yield hub


def race(*pushes: list[str]) -> list[subprocess.CompletedProcess]:
    """Run the `self-instruct` commands at once; each result, in order."""
    results: list = [None] * len(pushes)

    def run(i: int) -> None:
        results[i] = cli(pushes[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(pushes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results), "a push did not end"  # cli() failed the test from its thread
    return results


def card_history(folder: Path) -> list[str]:
    return [e["tag"] for e in DatasetCard.load(folder / "README.md").data[HISTORY_KEY]]


def test_two_pushes_to_one_branch_one_wins_the_other_says_why(hub, tmp_path):
    runs = [tmp_path / "run1", tmp_path / "run2"]
    rows = [make_run(run, n, tag=t) for run, n, t in zip(runs, (2, 3), "ab", strict=True)]
    cards = [(run / "README.md").read_bytes() for run in runs]
    hub.hold("commit", 2)
    done = race(*(["push", str(run), REPO] for run in runs))

    won = [d.returncode for d in done].index(0)
    lost = 1 - won
    error = one_error(done[lost])
    assert "Another push moved main of alice/self-instruct-demo while this one ran" in error
    assert '"Self-Instruct v1: ' in error and "by alice" in error  # the winner's commit
    assert "Nothing of this push landed" in error
    assert f"Run `self-instruct push {runs[lost]} {REPO}` again" in error
    assert (runs[lost] / "README.md").read_bytes() == cards[lost]
    assert list(tags()) == ["v1"] and card_history(runs[won]) == ["v1"]

    again = cli(["push", str(runs[lost]), REPO])
    assert again.returncode == 0 and f"Pushed {REPO}@v2" in again.stdout, again.stderr
    assert card_history(runs[lost]) == ["v1", "v2"]
    for tag, i in (("v1", won), ("v2", lost)):
        assert load_rows(REPO, "instances", tag, tmp_path / tag, ALICE) == rows[i]["instances"]


def test_two_pushes_to_two_branches_one_gets_the_tag(hub, tmp_path):
    """Both commits land (two branches), one tag `v1`: the other push names who has it, and
    running it again tags its commit `v2`, its card's history renamed to match."""
    runs = [tmp_path / "run1", tmp_path / "run2"]
    rows = [make_run(run, n, tag=t) for run, n, t in zip(runs, (2, 3), "ab", strict=True)]
    cards = [(run / "README.md").read_bytes() for run in runs]
    pushes = [["push", str(runs[0]), REPO], ["push", str(runs[1]), REPO, "--revision", "grow"]]
    hub.hold("commit", 2)
    done = race(*pushes)

    won = [d.returncode for d in done].index(0)
    lost = 1 - won
    branch = ("main", "grow")[lost]
    error = one_error(done[lost])
    assert "Tag 'v1' was made by another push while this one ran; it names commit" in error
    assert f"is on {branch} without a tag" in error
    assert (runs[lost] / "README.md").read_bytes() == cards[lost]
    untagged = HfApi(token=ALICE).dataset_info(REPO, revision=branch).sha

    again = cli(pushes[lost])
    assert again.returncode == 0 and f"Pushed {REPO}@v2" in again.stdout, again.stderr
    assert card_history(runs[lost]) == ["v2"] and card_history(runs[won]) == ["v1"]
    assert tags()["v2"] != untagged  # a new commit, whose card says v2 (the old one said v1)
    for tag, i in (("v1", won), ("v2", lost)):
        assert load_rows(REPO, "instances", tag, tmp_path / tag, ALICE) == rows[i]["instances"]


HOLD = """
import sys
from pathlib import Path
from self_instruct.runlog.lock import locked

with locked(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_push_takes_the_folder_lock(hub, tmp_path):
    """While another process holds the folder (a run, an audit), a push sends nothing and
    leaves the card alone, the library call as much as the command."""
    make_run(tmp_path / "run", 2)
    card = (tmp_path / "run" / "README.md").read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "run" / RUN_DIR)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirLockedError, match=f"in use by .*pid {holder.pid}"):
            push_folder(tmp_path / "run", REPO, token=ALICE)
        assert f"pid {holder.pid}" in one_error(cli(["push", str(tmp_path / "run"), REPO]))
    finally:
        holder.communicate(input="", timeout=60)
    assert not [r for r in hub.requests if "/commit/" in r[1]]
    assert (tmp_path / "run" / "README.md").read_bytes() == card
    assert push_folder(tmp_path / "run", REPO, token=ALICE).tag == "v1"


def test_a_push_never_writes_through_a_linked_card(hub, tmp_path):
    """A README.md that links elsewhere (a user's own file) is refused before anything is sent:
    the push would replace the file the link names with the new card."""
    make_run(tmp_path / "run", 2)
    theirs = tmp_path / "theirs.md"
    theirs.write_bytes((tmp_path / "run" / "README.md").read_bytes())
    (tmp_path / "run" / "README.md").unlink()
    (tmp_path / "run" / "README.md").symlink_to(theirs)
    before = theirs.read_bytes()
    with pytest.raises(OutputFolderError, match="README.md"):
        push_folder(tmp_path / "run", REPO, token=ALICE)
    assert "README.md" in one_error(cli(["push", str(tmp_path / "run"), REPO]))
    assert not [r for r in hub.requests if "/commit/" in r[1]]
    assert theirs.read_bytes() == before
