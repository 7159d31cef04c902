"""Versioned storage behind the local Hub: content-addressed blobs plus a commit log per repo.

Blobs live once under `ROOT/blobs/<sha256>`; each repository is one JSON document
(`ROOT/repos/<type>/<namespace>/<name>.json`) holding its commits (a full path -> blob map per
commit, so any revision is read without replaying history) and its refs (branches, tags, pull
requests). A mutation builds the new state in memory and replaces the file atomically, so a crash
or a dropped connection leaves either the old version or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# The Hub's default .gitattributes sends these through LFS; we answer preupload the same way.
LFS_SUFFIXES = (".parquet", ".arrow", ".png", ".jpg", ".bin", ".safetensors", ".gguf", ".zip")
LFS_MIN_SIZE = 10 << 20  # 10MB: larger files always go through LFS, as on the Hub
_GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES)
_COMMIT_OID = re.compile(r"[0-9a-f]{40}")


class HubError(Exception):
    """An error the server turns into an HTTP status plus the Hub's `X-Error-Code` header."""

    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def git_blob_oid(content: bytes) -> str:
    """The git object id of a blob, which is what the Hub reports as a regular file's `oid`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def wants_lfs(path: str, size: int, sample: bytes) -> bool:
    """Preupload's choice: LFS for binary suffixes, big files, or content with NUL bytes."""
    return path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE or b"\0" in sample


@dataclass
class Entry:
    """One file of a commit's tree. `git_oid` is the blob id (of the LFS pointer for LFS files)."""

    sha256: str
    size: int
    lfs: bool
    git_oid: str


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    author: str
    date: str
    tree: dict[str, Entry]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: list[str] = field(default_factory=list)  # refs/pr/<i + 1> -> commit oid

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]

    def resolve(self, revision: str) -> str:
        """Branch, tag, `refs/heads|tags/...`, `refs/pr/N` or a full commit oid -> commit oid."""
        rev = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        match = re.fullmatch(r"refs/pr/(\d+)", rev)
        if match and 0 < int(match[1]) <= len(self.prs):
            return self.prs[int(match[1]) - 1]
        if _COMMIT_OID.fullmatch(rev) and rev in self.commits:
            return rev
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def history(self, oid: str) -> list[Commit]:
        """Commits reachable from `oid`, newest first."""
        chain = []
        while oid is not None:
            chain.append(self.commits[oid])
            oid = self.commits[oid].parent
        return chain

    def last_change(self, oid: str, path: str) -> Commit:
        """The newest commit (from `oid` back) that set `path` to its current content."""
        commits = self.history(oid)
        entry = commits[0].tree.get(path)
        for commit, parent in zip(commits, commits[1:], strict=False):
            if parent.tree.get(path) != entry:
                return commit
        return commits[-1]


class Store:
    """All repositories under one root folder; every public method is thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    # -- blobs -------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def put_blob(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        path = self.blob_path(sha256)
        if not path.exists():
            _atomic_write(path, content)
        return sha256

    def read_blob(self, entry: Entry) -> bytes:
        return self.blob_path(entry.sha256).read_bytes()

    # -- repositories ------------------------------------------------------------------------
    def _repo_file(self, repo_type: str, repo_id: str) -> Path:
        return self.root / "repos" / repo_type / f"{repo_id}.json"

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        path = self._repo_file(repo_type, repo_id)
        if not path.is_file():
            return None
        return _repo_from_dict(json.loads(path.read_text()))

    def save(self, repo: Repo) -> None:
        path = self._repo_file(repo.repo_type, repo.repo_id)
        _atomic_write(path, json.dumps(asdict(repo), indent=1).encode())

    def create(self, repo_type: str, repo_id: str, private: bool, author: str) -> Repo:
        """A new repo whose `main` holds one commit with the Hub's default `.gitattributes`."""
        with self._lock:
            if self.get(repo_type, repo_id) is not None:
                raise HubError(409, "You already created this repo")
            repo = Repo(repo_type, repo_id, private, created_at=now())
            ops = [("file", ".gitattributes", _GITATTRIBUTES.encode())]
            self._commit(repo, "main", ops, title="initial commit", message="", author=author)
            self.save(repo)
            return repo

    def commit(
        self, repo: Repo, branch: str, ops: list[tuple], *, parent: str | None = None, **meta: str
    ) -> Commit:
        """Apply `ops` on top of `branch` (checking `parent` if given) and save, or fail whole."""
        with self._lock:
            repo = self.get(repo.repo_type, repo.repo_id)
            head = repo.resolve(branch)
            if parent is not None and parent != head:
                raise HubError(412, f"Parent commit {parent} is not the head of {branch} ({head})")
            commit = self._commit(repo, branch, ops, **meta)
            self.save(repo)
            return commit

    def _commit(self, repo: Repo, branch: str, ops: list[tuple], **meta: str) -> Commit:
        head = repo.branches.get(branch) or _pr_head(repo, branch)
        tree = dict(repo.commits[head].tree) if head else {}
        for op in ops:
            _apply(self, tree, op)
        body = {"parent": head, "tree": {p: e.sha256 for p, e in sorted(tree.items())}, **meta}
        oid = hashlib.sha1(json.dumps(body, sort_keys=True).encode() + now().encode()).hexdigest()
        commit = Commit(oid=oid, parent=head, date=now(), tree=tree, **meta)
        repo.commits[oid] = commit
        if branch.startswith("refs/pr/"):
            repo.prs[int(branch.rsplit("/", 1)[1]) - 1] = oid
        else:
            repo.branches[branch] = oid
        return commit

    def add_ref(self, repo: Repo, kind: str, name: str, target: str) -> None:
        """Create branch or tag `name` at revision `target`; 409 if it exists, as on the Hub."""
        with self._lock:
            repo = self.get(repo.repo_type, repo.repo_id)
            refs = repo.branches if kind == "branch" else repo.tags
            if name in refs:
                raise HubError(409, f"{kind.capitalize()} '{name}' already exists")
            refs[name] = repo.resolve(target)
            self.save(repo)

    def open_pr(self, repo: Repo, base: str) -> str:
        """A new `refs/pr/N` starting at `base`'s head; returns the ref name."""
        with self._lock:
            repo = self.get(repo.repo_type, repo.repo_id)
            repo.prs.append(repo.resolve(base))
            self.save(repo)
            return f"refs/pr/{len(repo.prs)}"


def _pr_head(repo: Repo, ref: str) -> str | None:
    return repo.resolve(ref) if ref.startswith("refs/pr/") else None


def _apply(store: Store, tree: dict[str, Entry], op: tuple) -> None:
    """One commit operation: ("file", path, bytes), ("lfs", path, sha256), ("delete", path)."""
    kind, path = op[0], op[1]
    if kind == "file":
        sha256 = store.put_blob(op[2])
        tree[path] = Entry(sha256, len(op[2]), lfs=False, git_oid=git_blob_oid(op[2]))
    elif kind == "lfs":
        if not store.has_blob(op[2]):
            raise HubError(400, f"LFS object {op[2]} for '{path}' was never uploaded")
        size = store.blob_path(op[2]).stat().st_size
        tree[path] = Entry(op[2], size, lfs=True, git_oid=git_blob_oid(lfs_pointer(op[2], size)))
    elif kind == "delete":
        removed = [p for p in tree if p == path or p.startswith(path.rstrip("/") + "/")]
        if not removed:
            raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        for p in removed:
            del tree[p]


def _repo_from_dict(data: dict) -> Repo:
    commits = {
        oid: Commit(**{**c, "tree": {p: Entry(**e) for p, e in c["tree"].items()}})
        for oid, c in data.pop("commits").items()
    }
    return Repo(**data, commits=commits)


def _atomic_write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
