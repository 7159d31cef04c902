"""A push never hangs and never lies (issue 23): every Hub or network refusal is one message, the
folder's card names only what the Hub holds, and running the push again finishes the version.

Faults are the local Hub's (tests/local_hub): an error status, a connection dropped before or
after the endpoint ran. Whatever could spin or hang on the old code runs with a deadline.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_runs import launch
from huggingface_hub import HfApi, constants
from local_hub import LocalHub
from test_hub_push import ALICE, REPO, load_rows, make_run

from self_instruct.cli.errors import cause
from self_instruct.hub.push import list_versions, push_folder
from self_instruct.hub.version_files import PushError

DEADLINE = 120  # seconds: far past any push here; reaching it means a hang


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with LocalHub(tmp_path / "hub", users={"alice": ALICE}) as hub:
        monkeypatch.setenv("HF_TOKEN", ALICE)
        yield hub


def pushed_v1(tmp_path, hub: LocalHub):
    """v1 from run1 on the Hub, run2 (other data) ready to push; run2's card as it was."""
    make_run(tmp_path / "run1", 2, tag="a")
    rows = make_run(tmp_path / "run2", 3, tag="b")
    first = push_folder(tmp_path / "run1", REPO, token=ALICE)
    return first, rows, (tmp_path / "run2" / "README.md").read_bytes()


def tags() -> dict[str, str]:
    refs = HfApi(token=ALICE).list_repo_refs(REPO, repo_type="dataset")
    return {tag.name: tag.target_commit for tag in refs.tags}


def commits_sent(hub: LocalHub) -> int:
    return len([r for r in hub.requests if r[0] == "POST" and "/commit/" in r[1] and r[2]])


def cli(
    args: list[str], env: dict[str, str] | None = None, deadline: float = DEADLINE
) -> subprocess.CompletedProcess:
    """`self-instruct ARGS` in a subprocess against the local Hub; killed at `deadline` (a hang)."""
    process = launch(args, {"HF_HUB_OFFLINE": "0", "HF_TOKEN": ALICE, **(env or {})})
    try:
        stdout, stderr = process.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"self-instruct {' '.join(args)} did not end within {deadline} s")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def one_error(done: subprocess.CompletedProcess, command: str = "push") -> str:
    """The single error line of a failed command: exit 1, no traceback."""
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    prefix = f"self-instruct {command}: error: "
    lines = [line for line in done.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, done.stderr
    return lines[0]


class Spinning(RuntimeError):
    pass


def test_the_cause_walk_ends_on_every_chain():
    """An error raised "from" itself (as the Hub's 412 was) or from one behind it: no spin."""
    itself = Spinning("412")
    itself.__cause__ = itself
    first, second = Spinning("a"), Spinning("b")
    first.__cause__, second.__cause__ = second, first
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = PushError("found")
    wrapped.__cause__.__cause__ = wrapped
    found: list = []

    def walk():
        found.extend([cause(itself, OSError), cause(first, OSError), cause(wrapped, PushError)])

    walker = threading.Thread(target=walk, daemon=True)
    walker.start()
    walker.join(timeout=10)
    assert not walker.is_alive(), "cause() spins on a cyclic chain"
    assert found[:2] == [None, None] and str(found[2]) == "found"


@pytest.mark.parametrize(
    ("route", "fault", "said"),
    [
        ("commit", (412, "Parent commit is not the head"), "Another push moved main of alice/"),
        ("commit", (409, "A commit conflicts"), "The Hub refused it (HTTP 409: A commit conflicts"),
        ("commit", (500, "Internal error"), "The Hub failed (HTTP 500: Internal error)"),
        ("commit", "drop", "The connection to http://127.0.0.1:"),
        ("create_tag", (503, "Unavailable"), "The Hub failed (HTTP 503: Unavailable)"),
        ("create_tag", (409, "Tag exists"), "The Hub refused it (HTTP 409: Tag exists)"),
        ("resolve", (400, "Bad request"), "The Hub refused it (HTTP 400"),
        ("list_refs", (404, "Repository not found", "RepoNotFound"), "not on the Hub, or this"),
        ("tree", (404, "Invalid rev id: main", "RevisionNotFound"), "Branch 'main' of alice/"),
    ],
    ids=["412", "409-commit", "500", "drop", "503-tag", "409-tag", "card", "no-repo", "no-rev"],
)
def test_every_hub_refusal_is_one_push_error(hub, tmp_path, route, fault, said):
    first, _, card = pushed_v1(tmp_path, hub)
    if fault == "drop":
        hub.drop_connection(route)
    else:
        hub.fail(route, *fault)
    with pytest.raises(PushError) as refused:
        push_folder(tmp_path / "run2", REPO, token=ALICE)
    message = str(refused.value)
    assert said in message and "\n" not in message and ALICE not in message
    assert f"run `self-instruct push {tmp_path / 'run2'} {REPO}`" in message.lower()
    assert (tmp_path / "run2" / "README.md").read_bytes() == card
    assert tags() == {"v1": first.commit}


def test_read_failures_push_nothing(hub, tmp_path):
    """A card that could not be read is never taken for a repo without a card (whose history
    would start over and whose old files would stay)."""
    pushed_v1(tmp_path, hub)
    before = commits_sent(hub)
    hub.fail("resolve", 400)
    with pytest.raises(PushError, match="Nothing was pushed"):
        push_folder(tmp_path / "run2", REPO, token=ALICE)
    assert commits_sent(hub) == before


def test_offline_is_one_message(hub, tmp_path, monkeypatch):
    pushed_v1(tmp_path, hub)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PushError, match="HF_HUB_OFFLINE is set.*Unset it, then run"):
        push_folder(tmp_path / "run2", REPO, token=ALICE)


def test_a_412_ends_the_command_with_one_message(hub, tmp_path):
    """The old code spun at 100% CPU here for ever, printing nothing."""
    pushed_v1(tmp_path, hub)
    hub.fail("commit", 412, "Parent commit is not the head of main")
    error = one_error(cli(["push", str(tmp_path / "run2"), REPO]))
    assert "Another push moved main" in error and "Nothing of this push landed" in error


# A Hub that accepts the connection and never answers (it stalls for 600 s): with a 5 s timeout
# (generous on a loaded machine: each earlier request must be answered within it), a command
# that has not ended after STALL_DEADLINE waits for the Hub, as huggingface_hub's client does.
STALLED = {"SELF_INSTRUCT_HUB_TIMEOUT": "5"}
STALL_DEADLINE = 60


def test_a_stalled_commit_is_one_message_and_push_finishes(hub, tmp_path):
    """huggingface_hub's client has no timeout: a commit the Hub never answers held the push
    for ever. It ends with one message, the card unchanged, and the push run again finishes."""
    first, rows, card = pushed_v1(tmp_path, hub)
    hub.stall("commit")
    run2 = tmp_path / "run2"
    error = one_error(cli(["push", str(run2), REPO], STALLED, STALL_DEADLINE))
    assert "did not answer in time (ReadTimeout; SELF_INSTRUCT_HUB_TIMEOUT sets" in error
    assert f"Its commit may have landed or not, and {run2 / 'README.md'} is unchanged" in error
    assert f"Run `self-instruct push {run2} {REPO}` again" in error
    assert (run2 / "README.md").read_bytes() == card and tags() == {"v1": first.commit}

    done = cli(["push", str(run2), REPO], STALLED, STALL_DEADLINE)
    assert done.returncode == 0 and f"Pushed {REPO}@v2" in done.stdout, done.stderr
    assert load_rows(REPO, "instances", "v2", tmp_path / "c", ALICE) == rows["instances"]


def test_a_stalled_token_check_is_one_message(hub, tmp_path):
    """`generate --push-to-hub` checks the token before the model loads (whoami): a Hub that
    never answers held it for ever."""
    hub.stall("whoami")
    args = ["generate", "--num-instructions", "4", "--output", str(tmp_path / "out")]
    done = cli([*args, "--push-to-hub", REPO], STALLED, STALL_DEADLINE)
    error = one_error(done, "generate")
    assert f"--push-to-hub {REPO}: http://127.0.0.1:" in error
    assert "did not answer in time (ReadTimeout; SELF_INSTRUCT_HUB_TIMEOUT sets" in error


def test_a_hub_that_is_down_at_the_token_check_is_one_message(tmp_path):
    """A refused connection is no OSError in httpx: it was a traceback."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    args = ["generate", "--num-instructions", "4", "--output", str(tmp_path / "out")]
    done = cli([*args, "--push-to-hub", REPO], {"HF_ENDPOINT": closed})
    assert f"--push-to-hub {REPO}: cannot reach {closed} (" in one_error(done, "generate")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1m"])
def test_a_bad_hub_timeout_is_one_message(tmp_path, value):
    done = cli(["push", str(tmp_path), REPO], {"SELF_INSTRUCT_HUB_TIMEOUT": value})
    error = one_error(done)
    assert "SELF_INSTRUCT_HUB_TIMEOUT must be " in error and "> 0, got" in error


def test_importing_self_instruct_leaves_the_hub_client_as_it_was():
    """The timeout is the CLI's: a program that imports self_instruct keeps huggingface_hub's
    client as it configured it (hub/client.py says why)."""
    code = (
        "import huggingface_hub, self_instruct, self_instruct.hub.push, self_instruct.cli;"
        "print(huggingface_hub.get_session().timeout)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "Timeout(timeout=None)", done.stderr


@pytest.mark.parametrize(
    ("route", "after", "landed"),
    [
        ("commit", False, "Its commit may have landed or not"),
        ("commit", True, "Its commit may have landed or not"),
        ("create_tag", False, "its tag may have landed or not"),
        ("create_tag", True, "its tag may have landed or not"),
    ],
    ids=["commit-lost", "commit-reply-lost", "tag-lost", "tag-reply-lost"],
)
def test_a_dropped_push_leaves_the_card_true_and_a_second_push_finishes(
    hub, tmp_path, route, after, landed
):
    first, rows, card = pushed_v1(tmp_path, hub)
    hub.drop_connection(route, after_applying=after)
    with pytest.raises(PushError, match=landed):
        push_folder(tmp_path / "run2", REPO, token=ALICE)
    assert (tmp_path / "run2" / "README.md").read_bytes() == card  # names no v2 the Hub lacks
    assert ("v2" in tags()) == (route == "create_tag" and after)
    commits = commits_sent(hub)

    again = push_folder(tmp_path / "run2", REPO, token=ALICE)
    assert again.tag == "v2" and tags() == {"v1": first.commit, "v2": again.commit}
    assert commits_sent(hub) == commits + (route == "commit" and not after)  # never a 2nd copy
    assert load_rows(REPO, "instances", "v2", tmp_path / "c", ALICE) == rows["instances"]
    local = (tmp_path / "run2" / "README.md").read_text()
    assert 'revision="v2"' in local
    hub_card = HfApi(token=ALICE).hf_hub_download(
        REPO, "README.md", repo_type="dataset", revision="v2"
    )
    assert local == Path(hub_card).read_text(encoding="utf-8")
    assert [v.tag for v in list_versions(REPO, token=ALICE)] == ["v1", "v2"]


def test_generate_push_to_hub_that_drops_is_one_message_and_push_finishes(hub, tmp_path):
    """`generate --push-to-hub` whose commit lands but whose reply is lost: one message naming
    the push that finishes it, a card naming no v1, then that push tags v1."""
    out = tmp_path / "out"
    hub.drop_connection("commit", after_applying=True)
    generate = ["generate", "--num-instructions", "4", "--batch-size", "2", "--output", str(out)]
    error = one_error(cli([*generate, "--push-to-hub", REPO]), "generate")
    assert "Its commit may have landed or not" in error
    assert f"Run `self-instruct push {out} {REPO}` again" in error
    card = (out / "README.md").read_text()
    assert 'revision="v1"' not in card and "self_instruct_versions" not in card
    assert tags() == {}

    done = cli(["push", str(out), REPO])
    assert done.returncode == 0 and f"Pushed {REPO}@v1" in done.stdout, done.stderr
    assert list(tags()) == ["v1"] and 'revision="v1"' in (out / "README.md").read_text()


def test_a_new_version_on_an_untagged_one_tags_that_first(hub, tmp_path):
    """run1's push committed but lost its tag; run2's push, before run1's is run again, tags
    run1's commit `v1` first: the history v2's card carries names only tags the Hub has."""
    rows = [
        make_run(tmp_path / run, n, tag=t) for run, n, t in (("run1", 2, "a"), ("run2", 3, "b"))
    ]
    hub.drop_connection("create_tag")
    with pytest.raises(PushError, match="Its commit .* is on main, its tag may have landed"):
        push_folder(tmp_path / "run1", REPO, token=ALICE)
    untagged = HfApi(token=ALICE).dataset_info(REPO).sha

    assert push_folder(tmp_path / "run2", REPO, token=ALICE).tag == "v2"
    assert tags()["v1"] == untagged
    for tag, run in (("v1", 0), ("v2", 1)):
        assert load_rows(REPO, "instances", tag, tmp_path / tag, ALICE) == rows[run]["instances"]
