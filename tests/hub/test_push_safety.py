"""A push sends one whole, checked version and touches nothing else (issue 13, items 3 and 6, and
the push messages): the card is validated before every push and rewritten only whole, other
people's files in the repo stay, and a user's mistake is one message, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import run_cli
from huggingface_hub import HfApi
from local_hub import LocalHub
from test_hub_push import ALICE, REPO, load_rows, make_run

from self_instruct.cli import main
from self_instruct.hub.push import push_folder
from self_instruct.hub.version_files import PushError


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with LocalHub(tmp_path / "hub", users={"alice": ALICE}) as hub:
        monkeypatch.setenv("HF_TOKEN", ALICE)
        yield hub


def writes(hub: LocalHub) -> list[tuple[str, str, int]]:
    return [r for r in hub.requests if r[0] in ("POST", "PUT")]


def header_only(yaml: str) -> str:
    return f"---\n{yaml}\n---\n# A card\n"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda text: "", "no YAML header"),  # a kill between truncate and write
        (lambda text: text[: len(text) // 2], "no YAML header"),  # a full disk cut it
        (lambda text: header_only("pretty_name: x"), "lists no configurations"),
        (lambda text: header_only("configs: [{config_name: a}]"), "records no file sizes"),
        (lambda text: header_only("configs: [\n"), "does not parse"),
    ],
    ids=["empty", "cut", "no-configs", "no-hashes", "bad-yaml"],
)
def test_a_damaged_card_is_refused_before_anything_is_sent(hub, tmp_path, damage, message):
    make_run(tmp_path / "run", 2)
    card = tmp_path / "run" / "README.md"
    card.write_text(damage(card.read_text()))
    before = card.read_bytes()
    with pytest.raises(PushError, match=message):
        push_folder(tmp_path / "run", REPO, token=ALICE)
    assert writes(hub) == [] and card.read_bytes() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda path: path.write_bytes(path.read_bytes() + b"x"), r"has \d+ bytes, not \d+"),
        (lambda path: path.write_bytes(path.read_bytes()[::-1]), "has other contents"),
        (lambda path: path.unlink(), "is missing"),
    ],
    ids=["grown", "rewritten", "deleted"],
)
@pytest.mark.parametrize("listed", ["plots/rows.png", "data/instructions-*.parquet"])
def test_files_that_differ_from_the_card_are_refused(hub, tmp_path, change, message, listed):
    make_run(tmp_path / "run", 2)
    (path,) = (tmp_path / "run").glob(listed)
    change(path)
    with pytest.raises(PushError, match=f"{path.relative_to(tmp_path / 'run')} {message}"):
        push_folder(tmp_path / "run", REPO, token=ALICE)
    assert writes(hub) == []


def test_a_full_disk_leaves_the_card_whole_and_pushes_nothing(hub, tmp_path):
    rows = make_run(tmp_path / "run", 2)
    card = tmp_path / "run" / "README.md"
    before = card.read_bytes()
    push = ["push", str(tmp_path / "run"), REPO]
    env = {"HF_HUB_OFFLINE": "0", "HF_TOKEN": ALICE}
    # Writing the card with its version history needs more than this (the old card is kept).
    done = run_cli(push, {**env, "SI_TEST_FILE_LIMIT": str(len(before) // 2)})
    assert card.read_bytes() == before
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "self-instruct push: error: cannot write" in done.stderr
    assert "nothing was pushed" in done.stderr
    assert not [r for r in hub.requests if "/commit/" in r[1]]

    assert run_cli(push, env).returncode == 0
    assert load_rows(REPO, "instances", "v1", tmp_path / "c", ALICE) == rows["instances"]


def test_files_of_others_in_the_repo_are_kept(hub, tmp_path):
    api = HfApi(token=ALICE)
    api.create_repo(REPO, repo_type="dataset")
    theirs = ["data/theirs.parquet", "plots/theirs.png", "cover.png"]
    for path in theirs:
        api.upload_file(
            path_or_fileobj=b"theirs", path_in_repo=path, repo_id=REPO, repo_type="dataset"
        )
    make_run(tmp_path / "run1", 2, tag="a")
    make_run(tmp_path / "run2", 3, tag="b")
    v1 = push_folder(tmp_path / "run1", REPO, token=ALICE)
    v2 = push_folder(tmp_path / "run2", REPO, token=ALICE)
    v1_files = set(api.list_repo_files(REPO, repo_type="dataset", revision=v1.tag))
    head = set(api.list_repo_files(REPO, repo_type="dataset", revision=v2.tag))
    assert set(theirs) <= v1_files and set(theirs) <= head
    own = {p.relative_to(tmp_path / "run2").as_posix() for p in (tmp_path / "run2").rglob("*.*")}
    mine = {f for f in head if f not in theirs and f != ".gitattributes"}
    assert mine == {f for f in own if not f.startswith(".self-instruct")}  # v1's shards left


def fails(argv: list[str], message: str) -> None:
    """`self-instruct ARGV` exits with one line: the command's error and `message`."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    error = str(exited.value.code)
    assert error.startswith(f"self-instruct {argv[0]}: error: ") and "\n" not in error
    assert message in error, error


@pytest.mark.parametrize("repo_id", ["../../x", "alice/x\nbob/y", "a/b/c", "alice/x--y"])
def test_bad_repo_ids_are_one_message(hub, tmp_path, repo_id):
    make_run(tmp_path / "run", 2)
    fails(["push", str(tmp_path / "run"), repo_id], "is not a Hub repo id")
    fails(["generate", "--output", str(tmp_path / "new"), "--push-to-hub", repo_id], "repo id")
    assert writes(hub) == [] and not (tmp_path / "new").exists()


@pytest.mark.parametrize("option", ["--tag", "--revision"])
@pytest.mark.parametrize("name", ["../../x", "v1\nv2", "a b", "-x", "x.lock", "a~1"])
def test_bad_tags_and_branches_are_one_message(hub, tmp_path, option, name):
    make_run(tmp_path / "run", 2)
    fails(
        ["push", str(tmp_path / "run"), REPO, f"{option}={name}"], "not a valid tag or branch name"
    )
    assert writes(hub) == []


def test_push_mistakes_are_one_message(hub, tmp_path):
    run = str(make_run(tmp_path / "run", 2) and tmp_path / "run")
    fails(["push", str(tmp_path / "nowhere"), REPO], "is not a folder")
    fails(["push", str(tmp_path), REPO], "has no README.md")
    fails(["push", run, REPO, "--create-pr", "--revision", "nope"], "'nope' does not exist")
    fails(["push", run, REPO, "--create-pr", "--tag", "v3"], "a pull request is not a version")
    main(["push", run, REPO, "--tag", "2024-06"])
    fails(["push", run, REPO, "--tag", "2024-06"], "Tag '2024-06' already exists")
    assert Path(run, "README.md").is_file()
