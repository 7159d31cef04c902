"""The Hub endpoints that huggingface_hub 2.4 and datasets 5.2 call, one function each.

Each takes a `server.Request` and returns `(status, headers, body)`; a `HubError` becomes the
Hub's error reply. Payload shapes follow what the clients parse (`hf_api.py`, `_commit_api.py`,
`lfs.py`, `file_download.py`), only with the fields those clients read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import TYPE_CHECKING

import yaml

from .store import Commit, Entry, HubError, Repo, lfs_pointer, wants_lfs

if TYPE_CHECKING:
    from .server import Request

_SIGNING_KEY = secrets.token_bytes(16)  # signs LFS upload URLs, which carry no token
_TRUE = ("1", "true", "True")


def whoami(req: Request):
    if (user := req.user) is None:
        raise HubError(401, "Invalid username or password.")
    token = {"displayName": "local-hub", "role": "write"}
    body = {
        "type": "user",
        "name": user,
        "fullname": user,
        "orgs": [],
        "auth": {"type": "access_token", "accessToken": token},
    }
    return 200, {}, body


def create_repo(req: Request):
    payload = req.json()
    if (user := req.user) is None:
        raise HubError(401, "You must be authenticated to create a repo")
    namespace = payload.get("organization") or user
    if namespace != user:
        raise HubError(403, f"You don't have the rights to create a repo under '{namespace}'")
    req.repo_type = payload.get("type") or "model"
    repo_id = f"{namespace}/{payload['name']}"
    private = payload.get("visibility", "public") != "public" or bool(payload.get("private"))
    if req.state.store.get(req.repo_type, repo_id) is not None:  # create_repo(exist_ok) reads url
        error = {"error": "You already created this repo", "url": req.repo_url(repo_id)}
        return 409, {"X-Error-Message": error["error"]}, error
    req.state.store.create(req.repo_type, repo_id, private, author=user)
    return 200, {}, {"url": req.repo_url(repo_id), "name": repo_id, "id": repo_id}


def validate_yaml(req: Request):
    try:
        _front_matter(req.json().get("content", ""))
    except yaml.YAMLError as err:
        return 400, {}, {"errors": [{"message": str(err)}], "warnings": []}
    return 200, {}, {"errors": [], "warnings": []}


def repo_info(req: Request):
    repo = req.readable_repo()
    commit = _commit(repo, req.params.get("rev") or "main")
    blobs = req.query.get("blobs") in _TRUE
    siblings = [_sibling(path, entry, blobs) for path, entry in sorted(commit.tree.items())]
    readme = commit.tree.get("README.md")
    card = _front_matter(req.state.store.read_blob(readme).decode()) if readme else None
    body = dict(
        _id=repo.repo_id,
        id=repo.repo_id,
        author=repo.owner,
        sha=commit.oid,
        private=repo.private,
        gated=False,
        disabled=False,
        tags=[],
        createdAt=repo.created_at,
        lastModified=commit.date,  # the revision's commit date, as on the Hub
        downloads=0,
        likes=0,
        siblings=siblings,
        cardData=card,
    )
    return 200, {}, body


def list_refs(req: Request):
    repo = req.readable_repo()
    prs = [(f"refs/pr/{i}", f"refs/pr/{i}", oid) for i, oid in enumerate(repo.prs, 1)]
    body = {
        "branches": _refs(repo.branches, "refs/heads/"),
        "tags": _refs(repo.tags, "refs/tags/"),
        "converts": [],
        "pullRequests": [{"name": n, "ref": r, "targetCommit": oid} for n, r, oid in prs],
    }
    return 200, {}, body


def list_commits(req: Request):
    repo = req.readable_repo()
    history = repo.history(repo.resolve(req.params["rev"]))
    body = [
        {"id": c.oid, "title": c.title, "message": c.message, "date": c.date}
        | {"authors": [{"user": c.author}]}
        for c in history
    ]
    return 200, {}, body


def tree(req: Request):
    repo = req.readable_repo()
    commit = _commit(repo, req.params["rev"])
    base = (req.params.get("path") or "").strip("/")
    recursive, expand = req.query.get("recursive") in _TRUE, req.query.get("expand") in _TRUE
    if base and not _exists(commit, base):
        raise HubError(404, f"Path {base} does not exist", "EntryNotFound")
    paths = _listing(commit, base, recursive)
    return 200, {}, [_path_info(repo, commit, p, expand) for p in paths]


def paths_info(req: Request):
    repo = req.readable_repo()
    commit = _commit(repo, req.params["rev"])
    form = req.form()
    expand = form.get("expand", ["False"])[-1] in _TRUE
    paths = [p.strip("/") for p in form.get("paths", []) if _exists(commit, p.strip("/"))]
    return 200, {}, [_path_info(repo, commit, p, expand) for p in paths]


def preupload(req: Request):
    repo = req.writable_repo()
    tree_ = _commit(repo, req.params["rev"]).tree
    answers = []
    for file in req.json()["files"]:
        sample = base64.b64decode(file["sample"])
        lfs = wants_lfs(file["path"], file["size"], sample)
        old = tree_.get(file["path"])
        oid = (old.sha256 if old.lfs else old.git_oid) if old else None
        answers.append(
            {"path": file["path"], "uploadMode": "lfs" if lfs else "regular"}
            | {"shouldIgnore": False, "oid": oid}
        )
    return 200, {}, {"files": answers}


def lfs_batch(req: Request):
    req.writable_repo()
    payload = req.json()
    if payload.get("operation") != "upload":
        raise HubError(400, "Only LFS uploads are served; downloads go through /resolve")
    objects = [_lfs_object(req, obj["oid"], obj["size"]) for obj in payload["objects"]]
    body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()
    return 200, {"Content-Type": "application/vnd.git-lfs+json"}, body


def lfs_upload(req: Request):
    oid = req.params["oid"]
    if not hmac.compare_digest(req.query.get("sig", ""), _sign(oid)):
        raise HubError(403, "Invalid or missing upload signature")
    if hashlib.sha256(req.body).hexdigest() != oid:
        raise HubError(400, f"Uploaded content does not match oid {oid}")
    req.state.store.put_blob(req.body)
    return 200, {}, b""


def commit(req: Request):
    repo = req.writable_repo()
    header, ops = req.ndjson()
    branch = req.params["rev"].removeprefix("refs/heads/")
    if branch not in repo.branches and not re.fullmatch(r"refs/pr/\d+", branch):
        raise HubError(404, f"Invalid rev id: {branch} is not a branch", "RevisionNotFound")
    pr_url = None
    if req.query.get("create_pr") in _TRUE:
        branch = req.state.store.open_pr(repo, branch)
        pr_url = f"{req.repo_url()}/discussions/{branch.rsplit('/', 1)[1]}"
    meta = {"title": header["summary"], "message": header.get("description", "")}
    new = req.state.store.commit(
        repo, branch, ops, parent=header.get("parentCommit"), author=req.user, **meta
    )
    body = {"commitUrl": f"{req.repo_url()}/commit/{new.oid}", "commitOid": new.oid}
    return 200, {}, body | {"success": True, "pullRequestUrl": pr_url}


def create_branch(req: Request):
    repo = req.writable_repo()
    start = req.json().get("startingPoint") or "main"
    req.state.store.add_ref(repo, "branch", req.params["name"], start)
    return 200, {}, {}


def create_tag(req: Request):
    repo = req.writable_repo()
    req.state.store.add_ref(repo, "tag", req.json()["tag"], req.params["rev"])
    return 200, {}, {}


def resolve(req: Request):
    repo = req.readable_repo()
    commit = _commit(repo, req.params["rev"])
    headers = {"X-Repo-Commit": commit.oid}
    entry = commit.tree.get(req.params["path"])
    if entry is None:  # the commit header lets hf_hub_download cache the miss
        raise HubError(404, "Entry not found", "EntryNotFound", headers)
    etag = entry.sha256 if entry.lfs else entry.git_oid
    headers |= {"ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
    headers |= {"Content-Type": "application/octet-stream"}
    if entry.lfs:
        headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(entry.size)}
    content = req.state.store.read_blob(entry)
    status, content, extra = req.byte_range(content)
    return status, headers | extra, content


_ENDPOINTS = (
    whoami,
    create_repo,
    validate_yaml,
    repo_info,
    list_refs,
    list_commits,
    tree,
    paths_info,
)
_ENDPOINTS += (preupload, lfs_batch, lfs_upload, commit, create_branch, create_tag, resolve)
API = {fn.__name__: fn for fn in _ENDPOINTS}


# -- helpers ---------------------------------------------------------------------------------
def _commit(repo: Repo, revision: str) -> Commit:
    return repo.commits[repo.resolve(revision)]


def _front_matter(text: str) -> dict | None:
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    return (yaml.safe_load(match[1]) or {}) if match else None


def _sibling(path: str, entry: Entry, blobs: bool) -> dict:
    if not blobs:
        return {"rfilename": path}
    return {"rfilename": path, "size": entry.size, "blobId": entry.git_oid} | (
        {"lfs": _lfs_info(entry)} if entry.lfs else {}
    )


def _lfs_info(entry: Entry) -> dict:
    pointer = lfs_pointer(entry.sha256, entry.size)
    return {"oid": entry.sha256, "size": entry.size, "pointerSize": len(pointer)}


def _refs(refs: dict[str, str], prefix: str) -> list[dict]:
    return [{"name": n, "ref": prefix + n, "targetCommit": oid} for n, oid in sorted(refs.items())]


def _exists(commit: Commit, path: str) -> bool:
    return path in commit.tree or any(p.startswith(path + "/") for p in commit.tree)


def _listing(commit: Commit, base: str, recursive: bool) -> list[str]:
    """Files and folders under `base`: direct children, or everything when recursive."""
    prefix = base + "/" if base else ""
    found: set[str] = set()
    for path in commit.tree:
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        depth = len(parts) if recursive else 1
        found.update(prefix + "/".join(parts[: i + 1]) for i in range(min(depth, len(parts))))
    return sorted(found)


def _path_info(repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
    entry = commit.tree.get(path)
    if entry is None:
        oid = hashlib.sha1(f"{commit.oid}:{path}".encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": path}
    info = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": path}
    if entry.lfs:
        info["lfs"] = _lfs_info(entry)
    if expand:
        last = repo.last_change(commit.oid, path)
        info["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
    return info


def _sign(oid: str) -> str:
    return hmac.new(_SIGNING_KEY, oid.encode(), "sha256").hexdigest()


def _lfs_object(req: Request, oid: str, size: int) -> dict:
    if req.state.store.has_blob(oid):
        return {"oid": oid, "size": size}  # no actions: the client skips the upload
    upload = {"href": f"{req.endpoint}/_lfs/{oid}?sig={_sign(oid)}"}
    return {"oid": oid, "size": size, "authenticated": True, "actions": {"upload": upload}}
