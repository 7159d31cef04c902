"""How long a request to the Hub may wait: huggingface_hub's own HTTP client waits for ever.

Its shared `httpx2.Client` has no timeout (`timeout=None`), and most `HfApi` calls take none, so
a Hub, proxy or network that accepts a connection and never answers holds a push for ever. The
CLI therefore gives every request huggingface_hub sends a timeout, once, at start
(`use_hub_timeout`): `SELF_INSTRUCT_HUB_TIMEOUT` seconds, 60 by default.

The timeout is httpx's per operation, not per request: connecting, and each wait for the next
bytes to read or to send, may take that long. A large Parquet file's LFS upload is never cut as
long as its bytes flow, however long it takes; only a silence of that length ends a request.
(Xet uploads run in `hf_xet`, with its own network stack and timeouts, untouched by this.)

Why process-wide, and only in the CLI: huggingface_hub keeps one client per process, set only
through `set_client_factory`, with no public way to read or put back a factory a program set (a
proxy, certificates). Changed inside `push_folder` and put back afterwards, it would replace such
a factory with the library's default. The CLI's process is ours and has no factory of its own,
so `self-instruct` sets it for all its Hub calls (pushes, the token check, loading a model or a
dataset); a program that imports self_instruct keeps huggingface_hub as it configured it, and may
call `use_hub_timeout` itself.
"""

from __future__ import annotations

import os
from typing import Any

from self_instruct.utils.ranges import POSITIVE, check_value

HUB_TIMEOUT_ENV = "SELF_INSTRUCT_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT = 60.0  # seconds of silence; a commit of many files takes the Hub a while


def hub_timeout() -> float:
    """The seconds `SELF_INSTRUCT_HUB_TIMEOUT` gives, else the default; ConfigError for a value
    that is not a number > 0 (nan, inf, -1, "1m")."""
    text = os.environ.get(HUB_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_HUB_TIMEOUT
    try:
        seconds: Any = float(text)
    except ValueError:
        seconds = text
    check_value(HUB_TIMEOUT_ENV, seconds, float, POSITIVE)
    return seconds


def use_hub_timeout(seconds: float) -> None:
    """From now on, in this process, each request huggingface_hub sends gives up after `seconds`
    without progress (see the module's docstring) and raises httpx2.TimeoutException.

    The client is the one huggingface_hub makes, with a timeout: the same event hooks (offline
    mode, request ids, the debug log) and redirects, read from the client it made, since it
    exports no factory of its own. A factory, not a setting on today's client: huggingface_hub
    closes its client after a connection error and makes a new one from the factory."""
    import httpx2
    from huggingface_hub import get_session, set_client_factory

    made = get_session()
    hooks, redirects = made.event_hooks, made.follow_redirects
    timeout = httpx2.Timeout(seconds)

    def client() -> httpx2.Client:
        return httpx2.Client(event_hooks=hooks, follow_redirects=redirects, timeout=timeout)

    set_client_factory(client)
