"""HTTP plumbing of the local Hub: routing, auth, bodies, the Hub's error headers, fault injection.

The endpoints themselves are in `api.py`. Errors follow the Hub: the status plus `X-Error-Code`
(`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`) and `X-Error-Message` headers, a JSON
`{"error": ...}` body, and no body at all on HEAD. `huggingface_hub.utils.hf_raise_for_status`
turns those headers into its typed errors, which is what `datasets` relies on.

Faults are armed per route and taken one per request, in order (`Fault`): a dropped connection
before the endpoint runs (nothing changes) or after it (the change is made, the reply is lost), an
error status, a hold that keeps the request until a given number of them wait (two pushes
that both read the repo before either commits, for certain: a slow commit without a clock), or a
stall: the request is read and never answered (a Hub that accepts the connection, then says
nothing), until the hub stops or a given time has passed; then the connection closes, and
nothing has changed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .api import API
from .store import HubError, Repo, Store

_TYPE = r"(?P<type>models|datasets|spaces)"
_REPO = r"(?P<repo>[^/]+/[^/]+?)"
_PREFIX = r"(?:(?P<prefix>datasets|spaces)/)?"
# (method, path regex, handler name in api.Api). Paths are matched still URL-quoted, so a quoted
# revision such as `refs%2Fpr%2F1` stays one segment.
ROUTES = [
    ("GET", r"/api/whoami-v2", "whoami"),
    ("POST", r"/api/repos/create", "create_repo"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("GET", rf"/api/{_TYPE}/{_REPO}(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
    ("GET", rf"/api/{_TYPE}/{_REPO}/refs", "list_refs"),
    ("GET", rf"/api/{_TYPE}/{_REPO}/commits/(?P<rev>[^/]+)", "list_commits"),
    ("GET", rf"/api/{_TYPE}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree"),
    ("POST", rf"/api/{_TYPE}/{_REPO}/paths-info/(?P<rev>[^/]+)", "paths_info"),
    ("POST", rf"/api/{_TYPE}/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
    ("POST", rf"/api/{_TYPE}/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
    ("POST", rf"/api/{_TYPE}/{_REPO}/branch/(?P<name>[^/]+)", "create_branch"),
    ("POST", rf"/api/{_TYPE}/{_REPO}/tag/(?P<rev>[^/]+)", "create_tag"),
    ("POST", rf"/{_PREFIX}{_REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
    ("PUT", r"/_lfs/(?P<oid>[0-9a-f]{64})", "lfs_upload"),
    ("GET", rf"/{_PREFIX}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ("HEAD", rf"/{_PREFIX}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
]
_COMPILED = [(m, re.compile(p), name) for m, p, name in ROUTES]
_ROUTE_NAMES = {name for _, _, name in ROUTES}
_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space", None: "model"}


@dataclass(frozen=True)
class Fault:
    """One armed fault: `kind` is "drop" (before the endpoint runs), "drop-after" (the endpoint
    ran, its reply is lost), "status" (answer `error` instead), "hold" (wait at `barrier`,
    then go on as usual; a barrier that times out lets it go on too) or "stall" (no reply for
    `seconds`, or until the hub stops, then a dropped connection)."""

    kind: str
    error: HubError | None = None
    barrier: threading.Barrier | None = None
    seconds: float = 0.0


@dataclass
class HubState:
    """What the handlers share: storage, users, the request log and armed faults."""

    store: Store
    tokens: dict[str, str]  # token -> user name
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    faults: defaultdict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)  # ends every stall

    def arm(self, route: str, fault: Fault, times: int = 1) -> None:
        if route not in _ROUTE_NAMES:
            raise ValueError(f"no route {route!r}: one of {sorted(_ROUTE_NAMES)}")
        with self.lock:
            self.faults[route].extend([fault] * times)

    def take_fault(self, route: str) -> Fault | None:
        with self.lock:
            return self.faults[route].popleft() if self.faults[route] else None


class Request:
    """One parsed request, as the endpoint functions in `api.py` see it."""

    def __init__(self, handler: Handler, params: dict[str, str | None]) -> None:
        self.handler, self.method = handler, handler.command
        self.state: HubState = handler.server.state
        parts = urlsplit(handler.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.params = {k: unquote(v) if v else v for k, v in params.items()}
        self.repo_type = _TYPES[params.get("type") or params.get("prefix")]
        self.repo_id = self.params.get("repo")
        self.endpoint = f"http://{handler.headers['Host']}"
        self.body = handler.read_body()

    @property
    def user(self) -> str | None:
        """The token's user; a token we do not know is a 401, as on the Hub."""
        auth = self.handler.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        user = self.state.tokens.get(auth.removeprefix("Bearer ").strip())
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def json(self) -> dict:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())

    def ndjson(self) -> tuple[dict, list[tuple]]:
        """The commit payload: a header line, then one operation per line (see `store._apply`)."""
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line")
        ops = []
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                ops.append(("file", value["path"], base64.b64decode(value["content"])))
            elif key == "lfsFile":
                ops.append(("lfs", value["path"], value["oid"]))
            elif key in ("deletedFile", "deletedFolder"):
                ops.append(("delete", value["path"]))
            else:
                raise HubError(400, f"Unknown commit operation: {key}")
        return lines[0]["value"], ops

    def byte_range(self, content: bytes) -> tuple[int, bytes, dict[str, str]]:
        """Serve `Range: bytes=a-b` (HfFileSystem reads in blocks); anything else in full."""
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.handler.headers.get("Range") or "")
        size = len(content)
        if not match or size == 0:
            return 200, content, {}
        start = int(match[1]) if match[1] else max(0, size - int(match[2]))
        end = min(int(match[2]), size - 1) if match[1] and match[2] else size - 1
        if start > end:
            return 416, b"", {"Content-Range": f"bytes */{size}"}
        return 206, content[start : end + 1], {"Content-Range": f"bytes {start}-{end}/{size}"}

    def repo_url(self, repo_id: str | None = None) -> str:
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{self.endpoint}/{prefix}{repo_id or self.repo_id}"

    def readable_repo(self) -> Repo:
        """The repo if this user may read it: like the Hub, hide private repos (401 or 404)."""
        repo = self.state.store.get(self.repo_type, self.repo_id)
        user = self.user
        if repo is None or (repo.private and user != repo.owner):
            status = 401 if repo is not None and user is None else 404
            raise HubError(status, "Repository not found", "RepoNotFound")
        return repo

    def writable_repo(self) -> Repo:
        """The repo if this user may write it: 401 without a token, 403 in another's namespace."""
        user = self.user
        if user is None:
            raise HubError(401, "A token with write access is required")
        if user != self.repo_id.split("/")[0]:
            raise HubError(403, f"You don't have write access to {self.repo_id}")
        return self.readable_repo()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args) -> None:
        """Quiet: the request log lives in `HubState.requests` (paths only, never headers)."""

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        for method, pattern, name in _COMPILED:
            if method == self.command and (match := pattern.fullmatch(path)):
                return self._run(name, match.groupdict())
        self.read_body()
        self.reply_error(HubError(404, f"No route for {self.command} {path}"))

    def _run(self, name: str, params: dict) -> None:
        try:
            request = Request(self, params)
            fault = self.server.state.take_fault(name)
            if fault is not None and fault.kind == "hold":
                with contextlib.suppress(threading.BrokenBarrierError):
                    fault.barrier.wait()
            if fault is not None and fault.kind == "stall":
                self.server.state.stopping.wait(fault.seconds)
            if fault is not None and fault.kind in ("drop", "status", "stall"):
                return self.reply_error(fault.error) if fault.error else self._drop_connection()
            status, headers, body = API[name](request)
        except HubError as err:
            return self.reply_error(err)
        if fault is not None and fault.kind == "drop-after":
            return self._drop_connection()
        self.reply(status, headers, body)

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return b"".join(iter(self._read_chunk, b""))
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _read_chunk(self) -> bytes:
        size = int(self.rfile.readline().split(b";")[0], 16)
        data = self.rfile.read(size)
        self.rfile.readline()  # the CRLF after every chunk, the last one included
        return data

    def reply(self, status: int, headers: dict[str, str], body: bytes | dict | list) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **headers}
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log(status)

    def reply_error(self, err: HubError) -> None:
        extra = {"X-Error-Message": err.message, **err.headers}
        if err.code:
            extra["X-Error-Code"] = err.code
        self.reply(err.status, extra, {"error": err.message})

    def _drop_connection(self) -> None:
        """Fault injection: the request was read, no reply comes (nor any change, unless the
        fault is "drop-after")."""
        self._log(0)
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _log(self, status: int) -> None:
        with self.server.state.lock:
            self.server.state.requests.append((self.command, urlsplit(self.path).path, status))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: HubState) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state
