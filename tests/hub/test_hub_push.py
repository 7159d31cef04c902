"""`self_instruct.hub.push`: versioned pushes through the real huggingface_hub/datasets clients.

Everything runs against the local Hub (tests/local_hub); the test marked `hub` runs the same
versioning flow against huggingface.co when HF_TOKEN and HUB_TEST_NAMESPACE are set.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import datasets
import pytest
import yaml
from huggingface_hub import DatasetCard, HfApi
from local_hub import LocalHub

from self_instruct.dataset_card.render import load_example
from self_instruct.export.files import content_named, file_entries
from self_instruct.hub.card_history import HISTORY_KEY
from self_instruct.hub.push import PushConfig, list_versions, push_folder, push_main
from self_instruct.hub.version_files import PushError

ALICE, BOB = "token-alice-0123456789", "token-bob-0123456789"
REPO = "alice/self-instruct-demo"


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", users={"alice": ALICE, "bob": BOB}) as hub:
        yield hub


def make_run(folder: Path, n_instances: int, *, tag: str = "", origin: dict | None = None) -> dict:
    """An output folder laid out like the pipeline's: card, data shards, a plot, a run dir."""
    instances = [
        {"id": f"{tag}i{k}", "instruction": f"Task {k}", "input": "", "output": f"Answer {k}{tag}"}
        for k in range(n_instances)
    ]
    instructions = [{"id": f"{tag}t{k}", "instruction": f"Task {k}"} for k in range(n_instances)]
    rows = {"instructions": instructions, "instances": instances}
    (folder / "data").mkdir(parents=True)
    (folder / "plots").mkdir()
    configs, listed = [], ["plots/rows.png"]
    for name, records in rows.items():
        datasets.Dataset.from_list(records).to_parquet(folder / "data" / f"{name}.parquet")
        listed.append(content_named(folder / "data" / f"{name}.parquet").relative_to(folder))
        path = [str(listed[-1])] if name == "instances" else str(listed[-1])  # as the card has
        configs.append({"config_name": name, "data_files": [{"split": "train", "path": path}]})
    (folder / "plots" / "rows.png").write_bytes(b"\x89PNG\r\n\x1a\n" + tag.encode())
    files = file_entries(folder, [str(path) for path in listed])
    header = {"configs": configs, "self_instruct": {**(origin or {}), "files": files}}
    yaml_text = yaml.safe_dump(header, sort_keys=False)
    body = f"# A Self-Instruct dataset\n\n{load_example()}\n"  # the snippet a push names its tag in
    (folder / "README.md").write_text(f"---\n{yaml_text}---\n{body}")
    (folder / ".self-instruct").mkdir()
    (folder / ".self-instruct" / "run.jsonl").write_text('{"event": "start"}\n')
    return rows


def load_rows(repo_id: str, config: str, revision: str, cache: Path, token=None) -> list[dict]:
    """Rows of one config at one revision, from a fresh datasets cache every time."""
    loaded = datasets.load_dataset(
        repo_id, config, revision=revision, split="train", cache_dir=str(cache), token=token
    )
    return loaded.to_list()


def push_two_versions(repo_id: str, token: str, tmp_path: Path) -> None:
    """v1, then v2 with more rows: each tag loads back exactly its own rows."""
    v1 = make_run(tmp_path / "run1", 3, tag="a")
    v2 = make_run(tmp_path / "run2", 5, tag="b")
    first = push_folder(tmp_path / "run1", repo_id, token=token, private=True)
    second = push_folder(tmp_path / "run2", repo_id, token=token)
    assert (first.tag, second.tag) == ("v1", "v2")

    assert load_rows(repo_id, "instances", "v1", tmp_path / "c1", token) == v1["instances"]
    assert load_rows(repo_id, "instances", "v2", tmp_path / "c2", token) == v2["instances"]
    assert load_rows(repo_id, "instructions", "v1", tmp_path / "c3", token) == v1["instructions"]
    versions = list_versions(repo_id, token=token)
    assert [(v.tag, v.commit) for v in versions] == [("v1", first.commit), ("v2", second.commit)]


def test_versions_load_back_exactly(hub, tmp_path):
    push_two_versions(REPO, ALICE, tmp_path)
    api = HfApi(token=ALICE)
    v1_files = set(api.list_repo_files(REPO, repo_type="dataset", revision="v1"))
    v2_files = set(api.list_repo_files(REPO, repo_type="dataset", revision="v2"))
    assert {"README.md", "plots/rows.png"} <= v1_files
    assert not any(f.startswith(".self-instruct") for f in v1_files | v2_files)
    assert len([f for f in v2_files if f.startswith("data/")]) == 2  # v1's shards deleted in v2
    titles = [c.title for c in api.list_repo_commits(REPO, repo_type="dataset")]
    assert titles[:2] == ["Self-Instruct v2: 5 instructions, 5 instances"] + [
        "Self-Instruct v1: 3 instructions, 3 instances"
    ]


def test_card_of_v2_lists_both_versions_and_v1_card_is_unchanged(hub, tmp_path):
    push_two_versions(REPO, ALICE, tmp_path)
    api = HfApi(token=ALICE)
    cards = {
        rev: DatasetCard.load(
            api.hf_hub_download(REPO, "README.md", repo_type="dataset", revision=rev)
        )
        for rev in ("v1", "v2")
    }
    history = cards["v2"].data[HISTORY_KEY]
    assert [(e["tag"], e["rows"]) for e in history] == [
        ("v1", {"instructions": 3, "instances": 3}),
        ("v2", {"instructions": 5, "instances": 5}),
    ]
    assert history[1]["changes"] == "+2 instructions, +2 instances"
    assert "| `v2` |" in cards["v2"].text and "| `v1` |" in cards["v2"].text
    assert [e["tag"] for e in cards["v1"].data[HISTORY_KEY]] == ["v1"]
    assert "| `v2` |" not in cards["v1"].text


def test_parquet_goes_through_lfs_and_one_commit(hub, tmp_path):
    make_run(tmp_path / "run", 2)
    push_folder(tmp_path / "run", REPO, token=ALICE)
    commits = [r for r in hub.requests if r[0] == "POST" and "/commit/" in r[1]]
    uploads = [r for r in hub.requests if r[0] == "PUT"]
    assert len(commits) == 1
    assert len(uploads) == 3  # two shards and the plot; the card goes inline
    assert all(path.endswith("/commit/main") for _, path, _ in commits)


def test_existing_tag_is_refused_before_any_upload(hub, tmp_path):
    make_run(tmp_path / "run1", 2, tag="a")
    make_run(tmp_path / "run2", 4, tag="b")
    push_folder(tmp_path / "run1", REPO, token=ALICE, tag="2024-06")
    before = len(hub.requests)
    with pytest.raises(PushError, match="Tag '2024-06' already exists"):
        push_folder(tmp_path / "run2", REPO, token=ALICE, tag="2024-06")
    assert not [r for r in hub.requests[before:] if r[0] in ("PUT", "POST") and "commit" in r[1]]
    assert push_folder(tmp_path / "run2", REPO, token=ALICE).tag == "v1"  # no vN yet


def test_commit_message_names_model_and_seeds_from_the_card(hub, tmp_path):
    make_run(tmp_path / "run", 2, origin={"model": "SmolLM2", "seeds": "bundled"})
    push_folder(tmp_path / "run", REPO, token=ALICE)
    (commit, *_) = HfApi(token=ALICE).list_repo_commits(REPO, repo_type="dataset")
    assert (
        commit.title
        == "Self-Instruct v1: 2 instructions, 2 instances (model SmolLM2, seeds bundled)"
    )
    push_folder(tmp_path / "run", "alice/other", token=ALICE, commit_message="My message")
    (commit, *_) = HfApi(token=ALICE).list_repo_commits("alice/other", repo_type="dataset")
    assert commit.title == "My message"


def test_unchanged_folder_makes_no_new_version(hub, tmp_path):
    make_run(tmp_path / "run", 2)
    first = push_folder(tmp_path / "run", REPO, token=ALICE)
    again = push_folder(tmp_path / "run", REPO, token=ALICE)
    assert (again.tag, again.commit) == ("v1", first.commit)
    assert [v.tag for v in list_versions(REPO, token=ALICE)] == ["v1"]


def test_branch_push_leaves_main_alone(hub, tmp_path):
    rows = make_run(tmp_path / "run", 2)
    api = HfApi(token=ALICE)
    api.create_repo(REPO, repo_type="dataset")
    main_before = api.dataset_info(REPO).sha
    result = push_folder(tmp_path / "run", REPO, token=ALICE, revision="grow")
    assert result.revision == "grow"
    assert api.dataset_info(REPO, revision="grow").sha == result.commit
    assert api.dataset_info(REPO).sha == main_before
    assert load_rows(REPO, "instances", result.tag, tmp_path / "c", ALICE) == rows["instances"]


def test_create_pr_opens_a_pull_request_and_tags_nothing(hub, tmp_path):
    rows = make_run(tmp_path / "run", 2)
    result = push_folder(tmp_path / "run", REPO, token=ALICE, create_pr=True)
    assert result.tag is None and result.pr_url.endswith("/discussions/1")
    api = HfApi(token=ALICE)
    assert api.list_repo_refs(REPO, repo_type="dataset").tags == []
    assert "README.md" not in api.list_repo_files(REPO, repo_type="dataset")
    assert load_rows(REPO, "instances", "refs/pr/1", tmp_path / "c", ALICE) == rows["instances"]
    with pytest.raises(PushError, match="pull request is not a version"):
        push_folder(tmp_path / "run", REPO, token=ALICE, create_pr=True, tag="v9")


def test_private_repo_and_token_refusals(hub, tmp_path):
    make_run(tmp_path / "run", 2)
    push_folder(tmp_path / "run", REPO, token=ALICE, private=True)
    with pytest.raises(datasets.exceptions.DatasetNotFoundError):
        load_rows(REPO, "instances", "v1", tmp_path / "c1", token=BOB)
    with pytest.raises(PushError, match="may not write to alice/.*403"):
        push_folder(tmp_path / "run", REPO, token=BOB)
    with pytest.raises(PushError, match="rejected the token.*401"):
        push_folder(tmp_path / "run", REPO, token="not-a-token")
    writes = len([r for r in hub.requests if r[0] in ("POST", "PUT")])
    with pytest.raises(PushError, match="No Hugging Face token found"):
        push_folder(tmp_path / "run", "alice/other", token=None)
    assert len([r for r in hub.requests if r[0] in ("POST", "PUT")]) == writes
    assert [v.tag for v in list_versions(REPO, token=ALICE)] == ["v1"]


def test_interrupted_push_leaves_previous_version(hub, tmp_path):
    v1 = make_run(tmp_path / "run1", 2, tag="a")
    v2 = make_run(tmp_path / "run2", 3, tag="b")
    first = push_folder(tmp_path / "run1", REPO, token=ALICE)
    hub.drop_connection("commit")
    with pytest.raises(Exception, match="(?i)disconnect|closed|connection"):
        push_folder(tmp_path / "run2", REPO, token=ALICE)
    assert [(v.tag, v.commit) for v in list_versions(REPO, token=ALICE)] == [("v1", first.commit)]
    assert HfApi(token=ALICE).dataset_info(REPO).sha == first.commit
    assert load_rows(REPO, "instances", "main", tmp_path / "c1", ALICE) == v1["instances"]

    retried = push_folder(tmp_path / "run2", REPO, token=ALICE)
    assert retried.tag == "v2"
    assert load_rows(REPO, "instances", "v2", tmp_path / "c2", ALICE) == v2["instances"]


def test_token_never_printed_logged_or_committed(hub, tmp_path, caplog, capsys, monkeypatch):
    make_run(tmp_path / "run", 2)
    monkeypatch.setenv("HF_TOKEN", ALICE)  # the usual place, as a user would set it
    caplog.set_level(logging.DEBUG)
    push_main(PushConfig(folder=str(tmp_path / "run"), repo_id=REPO))
    with pytest.raises(PushError) as refused:
        push_folder(tmp_path / "run", "bob/not-yours")
    out, err = capsys.readouterr()
    assert "Pushed alice/self-instruct-demo@v1" in out
    api = HfApi()
    commits = api.list_repo_commits(REPO, repo_type="dataset")
    card = Path(api.hf_hub_download(REPO, "README.md", repo_type="dataset")).read_text()
    seen = [out, err, caplog.text, str(refused.value), card, repr(hub.requests)]
    seen += [c.title + c.message for c in commits]
    assert caplog.text and all(ALICE not in text for text in seen)


def test_push_config_parses_like_a_cli():
    from transformers import HfArgumentParser

    (config,) = HfArgumentParser(PushConfig).parse_args_into_dataclasses(
        ["--folder", "out", "--repo_id", "me/ds", "--private", "--revision", "dev"]
    )
    assert config == PushConfig("out", "me/ds", private=True, revision="dev")


def test_card_listing_missing_data_is_refused(tmp_path):
    make_run(tmp_path / "run", 2)
    next((tmp_path / "run" / "data").glob("instances-*.parquet")).unlink()
    with pytest.raises(PushError, match=r"instances-\w+\.parquet is missing"):
        push_folder(tmp_path / "run", REPO, token=ALICE)


@pytest.mark.hub
@pytest.mark.skipif(
    not (os.environ.get("HF_TOKEN") and os.environ.get("HUB_TEST_NAMESPACE")),
    reason="needs HF_TOKEN and HUB_TEST_NAMESPACE for the real Hub",
)
def test_versions_on_the_real_hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    repo_id = f"{os.environ['HUB_TEST_NAMESPACE']}/self-instruct-test-{uuid.uuid4().hex[:8]}"
    try:
        push_two_versions(repo_id, os.environ["HF_TOKEN"], tmp_path)
    finally:
        HfApi().delete_repo(repo_id, repo_type="dataset", missing_ok=True)
