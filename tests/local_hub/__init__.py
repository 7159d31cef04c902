"""A small Hugging Face Hub for tests: the real `huggingface_hub` and `datasets` clients talk to it.

    with LocalHub(tmp_path, users={"alice": "token-a", "bob": "token-b"}) as hub:
        HfApi(token="token-a").create_repo("alice/ds", repo_type="dataset")
        load_dataset("alice/ds", "instances", revision="v1")  # served by hub.endpoint

It serves, on 127.0.0.1, what those clients call for a dataset's life (create, preupload, Git LFS
batch + PUT, the NDJSON commit, branches, tags, refs, commits, tree, paths-info, resolve), stores
versions for real (`store.py`: content-addressed blobs, an atomic commit log per repo) and checks
tokens (401 without one for writes, 403 in another user's namespace, private repos hidden from
others). Xet storage is out of scope: clients run with `HF_HUB_DISABLE_XET=1`.

Pointing the clients here: both libraries copy `HF_ENDPOINT` (and `HF_HUB_OFFLINE`) into module
constants at import time (`huggingface_hub.constants.ENDPOINT`, `datasets.config.HF_ENDPOINT`),
so setting the environment variable inside a test is too late. While the `with` block runs,
LocalHub patches those constants and the environment (for subprocesses), lifts
`HF_HUB_OFFLINE` for these clients only, and hides every real token (env vars, stored login), so
nothing can reach or authenticate against huggingface.co. A subprocess gets `hub.env()` instead.
"""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from .server import Fault, HubState, Server
from .store import HubError, Store

_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE")
_TOKEN_VARS += ("TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


class LocalHub:
    """Run the server in a thread and point this process's Hub clients at it (see module doc)."""

    def __init__(self, root: str | Path, users: dict[str, str], *, patch_clients: bool = True):
        self.root = Path(root)
        self.state = HubState(Store(self.root / "storage"), {t: u for u, t in users.items()})
        self.patch_clients = patch_clients
        self._server: Server | None = None
        self._stack = ExitStack()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request so far; status 0 marks a dropped connection."""
        return list(self.state.requests)

    def drop_connection(self, route: str, times: int = 1, *, after_applying: bool = False) -> None:
        """Fault injection: the next `times` calls to `route` (a name in `server.ROUTES`, e.g.
        "commit") are read in full, then the connection closes with no reply and no change; with
        `after_applying`, the change is made first (a reply lost on the way back)."""
        self.state.arm(route, Fault("drop-after" if after_applying else "drop"), times)

    def fail(
        self, route: str, status: int, message: str = "", code: str | None = None, *, times=1
    ) -> None:
        """Fault injection: the next `times` calls to `route` answer `status` (with the Hub's
        `X-Error-Code` `code`, if given) and change nothing."""
        error = HubError(status, message or f"Injected error {status}", code)
        self.state.arm(route, Fault("status", error=error), times)

    def hold(self, route: str, count: int, timeout: float = 60) -> None:
        """Fault injection, a slow `route`: each of its next `count` calls waits until all
        `count` are waiting (at most `timeout` seconds), then all go on, one at a time. Two
        pushes held at "commit" have both read the repo before either commit lands."""
        barrier = threading.Barrier(count, timeout=timeout)
        self.state.arm(route, Fault("hold", barrier=barrier), count)

    def stall(self, route: str, times: int = 1, seconds: float = 600) -> None:
        """Fault injection, a Hub that never answers: the next `times` calls to `route` are read
        in full and get no reply for `seconds` (or until this hub stops); then the connection
        closes, with no change. A client without a timeout waits that long."""
        self.state.arm(route, Fault("stall", seconds=seconds), times)

    def env(self) -> dict[str, str]:
        """Environment for a client subprocess: this endpoint, online, no Xet, no real token."""
        env = {k: v for k, v in os.environ.items() if k not in _TOKEN_VARS}
        hf_home = str(self.root / "hf_home")
        return env | {"HF_ENDPOINT": self.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": hf_home}

    def __enter__(self) -> LocalHub:
        self._server = Server(self.state)
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self._stack.callback(thread.join, 5)
        self._stack.callback(self._server.server_close)
        self._stack.callback(self._server.shutdown)
        self._stack.callback(self.state.stopping.set)  # first: stalled requests end
        if self.patch_clients:
            self._patch_clients()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    def _patch_clients(self) -> None:
        from datasets import config as ds_config
        from huggingface_hub import constants as hub_constants

        env = self.env()
        patches = [
            mock.patch.dict(os.environ, env, clear=True),
            mock.patch.multiple(
                hub_constants,
                ENDPOINT=self.endpoint,
                HUGGINGFACE_CO_URL_TEMPLATE=self.endpoint
                + "/{repo_id}/resolve/{revision}/{filename}",
                HF_HUB_OFFLINE=False,
                HF_HUB_DISABLE_XET=True,
                HF_HUB_CACHE=str(self.root / "hf_home" / "hub"),
                HF_TOKEN_PATH=str(self.root / "hf_home" / "token"),
                HF_STORED_TOKENS_PATH=str(self.root / "hf_home" / "stored_tokens"),
            ),
            mock.patch.multiple(
                ds_config,
                HF_ENDPOINT=self.endpoint,
                HUB_DATASETS_URL=self.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
                HF_HUB_OFFLINE=False,
                HF_DATASETS_OFFLINE=False,
            ),
        ]
        for patch in patches:
            self._stack.enter_context(patch)
