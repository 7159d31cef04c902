"""The local Hub itself, through the real huggingface_hub client and raw HTTP where the wire
format is the point (error headers, HEAD without body, the preupload answer)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import datasets
import httpx2
import pytest
from huggingface_hub import HfApi, HfFileSystem, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from local_hub import LocalHub

ALICE, BOB = "token-alice", "token-bob"
REPO = "alice/ds"


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", users={"alice": ALICE, "bob": BOB}) as hub:
        yield hub


@pytest.fixture
def api(hub):
    api = HfApi(token=ALICE)
    api.create_repo(REPO, repo_type="dataset", private=True)
    return api


def upload(api: HfApi, path: str, content: bytes, **kwargs):
    return api.upload_file(
        path_or_fileobj=content, path_in_repo=path, repo_id=REPO, repo_type="dataset", **kwargs
    )


def test_clients_point_at_the_local_hub_only_inside_the_block(tmp_path):
    before = (constants.ENDPOINT, datasets.config.HF_ENDPOINT, constants.HF_HUB_OFFLINE)
    with LocalHub(tmp_path, users={}) as hub:
        assert constants.ENDPOINT == datasets.config.HF_ENDPOINT == hub.endpoint
        assert hub.endpoint.startswith("http://127.0.0.1:")
        assert not constants.HF_HUB_OFFLINE and not datasets.config.HF_HUB_OFFLINE
        assert constants.HF_HUB_DISABLE_XET
    assert before == (constants.ENDPOINT, datasets.config.HF_ENDPOINT, constants.HF_HUB_OFFLINE)


def test_real_tokens_are_hidden(hub, monkeypatch):
    assert HfApi().token is None and HfApi()._build_hf_headers().get("authorization") is None
    monkeypatch.setenv("HF_TOKEN", BOB)
    assert HfApi().whoami()["name"] == "bob"


def test_subprocess_client_uses_env(hub):
    code = "from huggingface_hub import HfApi; print(HfApi().whoami()['name'])"
    env = hub.env() | {"HF_TOKEN": ALICE}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "alice", out.stderr


def test_preupload_sends_parquet_through_lfs(hub, api):
    files = [
        {"path": "data/x.parquet", "size": 4, "sample": base64.b64encode(b"PAR1").decode()},
        {"path": "README.md", "size": 5, "sample": base64.b64encode(b"# hi\n").decode()},
    ]
    reply = httpx2.post(
        f"{hub.endpoint}/api/datasets/{REPO}/preupload/main",
        json={"files": files},
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    modes = {f["path"]: f["uploadMode"] for f in reply.json()["files"]}
    assert modes == {"data/x.parquet": "lfs", "README.md": "regular"}


def test_errors_carry_hub_codes_and_head_has_no_body(hub, api):
    url = f"{hub.endpoint}/datasets/{REPO}/resolve/main/ds.py"
    auth = {"Authorization": f"Bearer {ALICE}"}
    head = httpx2.head(url, headers=auth)
    assert head.status_code == 404 and head.headers["X-Error-Code"] == "EntryNotFound"
    assert head.content == b"" and len(head.headers["X-Repo-Commit"]) == 40
    missing_rev = httpx2.head(url.replace("/main/", "/nope/"), headers=auth)
    assert missing_rev.headers["X-Error-Code"] == "RevisionNotFound"
    assert httpx2.head(url).status_code == 401  # private repo, no token
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "ds.py", repo_type="dataset", token=ALICE)
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(REPO, revision="v9")


def test_tokens_and_permissions(hub, api):
    with pytest.raises(HfHubHTTPError, match="401"):
        HfApi(token=False).create_repo("alice/new", repo_type="dataset")
    with pytest.raises(HfHubHTTPError, match="403"):
        HfApi(token=BOB).create_repo("alice/new", repo_type="dataset")
    with pytest.raises(HfHubHTTPError, match="403"):
        upload(HfApi(token=BOB), "x.txt", b"x", token=BOB)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=BOB).dataset_info(REPO)  # someone else's private repo is hidden
    with pytest.raises(HfHubHTTPError, match="Invalid user token"):
        HfApi(token="forged").whoami()
    assert api.list_repo_files(REPO, repo_type="dataset") == [".gitattributes"]


def test_versions_are_commits_tags_and_branches(hub, api):
    first = upload(api, "a.txt", b"one")
    api.create_tag(REPO, tag="v1", repo_type="dataset")
    api.create_branch(REPO, branch="dev", repo_type="dataset")
    second = upload(api, "a.txt", b"two")
    with pytest.raises(HfHubHTTPError, match="409"):
        api.create_tag(REPO, tag="v1", repo_type="dataset")

    def read(rev):
        path = hf_hub_download(REPO, "a.txt", repo_type="dataset", revision=rev, token=ALICE)
        return Path(path).read_text()

    assert (read("v1"), read("dev"), read("main")) == ("one", "one", "two")
    assert read(first.oid) == "one"
    refs = api.list_repo_refs(REPO, repo_type="dataset")
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", first.oid)]
    assert {b.name for b in refs.branches} == {"main", "dev"}
    history = [c.commit_id for c in api.list_repo_commits(REPO, repo_type="dataset")]
    assert history[:2] == [second.oid, first.oid]


def test_storage_survives_a_restart(tmp_path):
    users = {"alice": ALICE}
    with LocalHub(tmp_path, users=users):
        api = HfApi(token=ALICE)
        api.create_repo(REPO, repo_type="dataset")
        upload(api, "data/x.parquet", b"PAR1 then some bytes")
        api.create_tag(REPO, tag="v1", repo_type="dataset")
    with LocalHub(tmp_path, users=users):
        path = hf_hub_download(REPO, "data/x.parquet", repo_type="dataset", revision="v1")
        assert Path(path).read_bytes() == b"PAR1 then some bytes"


def test_dropped_commit_changes_nothing(hub, api):
    head = api.dataset_info(REPO).sha
    hub.drop_connection("commit")
    with pytest.raises(httpx2.TransportError):
        upload(api, "a.txt", b"lost")
    assert hub.requests[-1] == ("POST", f"/api/datasets/{REPO}/commit/main", 0)
    assert api.dataset_info(REPO).sha == head
    assert upload(api, "a.txt", b"kept").oid != head


def test_a_stalled_commit_gets_no_answer_and_changes_nothing(hub, api):
    """A Hub that reads the request and says nothing: only a client's timeout ends the wait."""
    head = api.dataset_info(REPO).sha
    hub.stall("commit")
    header = {"key": "header", "value": {"summary": "stalled"}}
    line = {"key": "file", "value": {"path": "a.txt", "content": "bG9zdA==", "encoding": "base64"}}
    body = "\n".join(json.dumps(item) for item in (header, line))
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(
            f"{hub.endpoint}/api/datasets/{REPO}/commit/main",
            content=body,
            headers={"Authorization": f"Bearer {ALICE}", "Content-Type": "application/x-ndjson"},
            timeout=1,
        )
    assert api.dataset_info(REPO).sha == head
    assert upload(api, "a.txt", b"kept").oid != head  # one call stalls, the next is answered


def test_stale_parent_commit_is_refused(hub, api):
    head = api.dataset_info(REPO).sha
    upload(api, "a.txt", b"one")
    with pytest.raises(HfHubHTTPError, match="412"):
        upload(api, "b.txt", b"two", parent_commit=head)


def test_tree_paths_info_and_filesystem(hub, api):
    upload(api, "data/x.parquet", b"PAR1 x")
    upload(api, "README.md", b"# card\n")
    tree = api.list_repo_tree(REPO, repo_type="dataset", recursive=True, expand=True)
    by_path = {item.path: item for item in tree}
    assert set(by_path) == {".gitattributes", "README.md", "data", "data/x.parquet"}
    assert by_path["data/x.parquet"].lfs.size == 6
    assert by_path["README.md"].last_commit.title == "Upload README.md with huggingface_hub"
    info = api.get_paths_info(REPO, ["data", "README.md", "nope"], repo_type="dataset")
    assert [type(i).__name__ for i in info] == ["RepoFolder", "RepoFile"]
    fs = HfFileSystem(token=ALICE, endpoint=hub.endpoint)
    assert fs.glob(f"datasets/{REPO}/data/*.parquet") == [f"datasets/{REPO}/data/x.parquet"]
    assert fs.cat(f"datasets/{REPO}/data/x.parquet", start=1, end=4) == b"AR1"


def test_lfs_upload_needs_the_batch_signature(hub, api):
    oid = "0" * 64
    assert httpx2.put(f"{hub.endpoint}/_lfs/{oid}", content=b"x").status_code == 403
    bad_commit = json.dumps({"key": "lfsFile", "value": {"path": "f.bin", "oid": oid}})
    reply = httpx2.post(
        f"{hub.endpoint}/api/datasets/{REPO}/commit/main",
        content=json.dumps({"key": "header", "value": {"summary": "s"}}) + "\n" + bad_commit,
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    assert reply.status_code == 400 and "never uploaded" in reply.json()["error"]
