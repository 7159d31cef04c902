"""Where each request goes: endpoints, their request slots and sessions, health and rotation.

An endpoint has `max_concurrency` slots. A slot is one request's worth of an endpoint, with its
own `AsyncInferenceClient` on its own one-connection session: one shared session would do the
same work with more CPU, because httpx's pool looks at every connection it holds, probing each
idle socket, twice per request, which at 64 connections was a third of the client's CPU per
request (`scripts/bench_backends.py`). `EndpointPool` hands the slots out, least-loaded healthy
endpoint first, and rests an endpoint that keeps failing.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from dataclasses import dataclass, field

import httpx2
from huggingface_hub import AsyncInferenceClient

from self_instruct.backends.urls import may_receive_hf_token
from self_instruct.utils.redaction import redact_url

logger = logging.getLogger(__name__)

ONE_CONNECTION = httpx2.Limits(max_connections=1, max_keepalive_connections=1)


async def _drop_authorization(request: httpx2.Request) -> None:
    """Request hook: no credentials to this server (huggingface_hub adds the user's HF token)."""
    request.headers.pop("authorization", None)


@dataclass
class RetryPolicy:
    """How hard to try before a request counts as failed, and how long a failing server rests."""

    max_attempts: int = 6
    initial_wait: float = 1.0  # seconds before the first retry, doubled each time
    max_wait: float = 30.0
    jitter: float = 1.0  # up to this many random seconds added, so retries do not arrive in step
    failures_to_cooldown: int = 5  # consecutive failed attempts
    cooldown: float = 30.0  # seconds out of rotation


@dataclass(eq=False)
class Endpoint:
    """One server: its slots, its health and what it has served.

    `stats` become `usage.per_endpoint[url]`: successful requests, failed attempts, tokens (`None`
    once one answer did not count them), and `seconds`, the summed latency of the successful
    requests (concurrent ones overlap).
    """

    url: str
    slots: list[Slot] = field(default_factory=list)
    idle: list[Slot] = field(default_factory=list)  # the slots free now; the others are in flight
    consecutive_failures: int = 0
    down_until: float = 0.0  # time.monotonic() before which it takes no requests
    stats: dict[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(
            ("requests", "failed_attempts", "prompt_tokens", "completion_tokens", "seconds"), 0.0
        )
    )


@dataclass(eq=False)
class Slot:
    """Room for one request on an endpoint: a client on a session that holds one connection.

    The session carries one request at a time, so the latest response on it is the current
    request's: `headers` keeps its headers for what a protocol reports only there (TGI's token
    counts).
    """

    endpoint: Endpoint
    client: AsyncInferenceClient
    session: httpx2.AsyncClient
    headers: httpx2.Headers = field(default_factory=httpx2.Headers)

    async def keep_headers(self, response: httpx2.Response) -> None:
        """The session's response hook."""
        self.headers = response.headers


class EndpointPool:
    """Hands out slots: the healthy endpoint with the most idle ones first, waiting while none is.

    Waiters queue in arrival order and a released slot wakes one of them, not all: every prompt of
    a batch waits here at once, and waking hundreds to hand out one slot made each release cost
    O(waiting).
    """

    def __init__(self, endpoints: list[Endpoint], policy: RetryPolicy):
        self.endpoints = endpoints
        self.policy = policy
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> Slot:
        while (endpoint := self._pick()) is None:
            await self._wait()
        return endpoint.idle.pop()

    def release(self, slot: Slot) -> None:
        slot.endpoint.idle.append(slot)
        self._wake_one()

    def succeeded(self, endpoint: Endpoint) -> None:
        endpoint.consecutive_failures = 0

    def failed(self, endpoint: Endpoint) -> None:
        endpoint.stats["failed_attempts"] += 1
        endpoint.consecutive_failures += 1
        if endpoint.consecutive_failures >= self.policy.failures_to_cooldown:
            self._cool_down(endpoint)

    def all_down(self) -> bool:
        """Whether every endpoint failed its latest attempts, enough to be sent to rest.

        Judged by the failures, not by the clock: a cool-down may be over by the time a batch's
        last request gives up, and the endpoint has still not answered since.
        """
        enough = self.policy.failures_to_cooldown
        return all(endpoint.consecutive_failures >= enough for endpoint in self.endpoints)

    def _pick(self) -> Endpoint | None:
        now = time.monotonic()
        free = [e for e in self.endpoints if e.down_until <= now and e.idle]
        return max(free, key=lambda e: len(e.idle), default=None)

    async def _wait(self) -> None:
        """Until a release wakes this waiter, or the earliest cool-down ends (nobody releases then).

        Slots of a resting endpoint come back with no release: but whoever waits meanwhile has the
        cool-down's end as timeout, and so does a waiter woken by one of its slots' release. A
        waiter woken but cancelled before it runs passes its turn on, or a slot could stay idle.
        """
        now = time.monotonic()
        wake = min((e.down_until - now for e in self.endpoints if e.down_until > now), default=None)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout=wake)
        except TimeoutError:
            pass  # the timeout cancelled `waiter`: `_wake_one` skips it
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()
            raise

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # timed out or cancelled meanwhile
                waiter.set_result(None)
                return

    def _cool_down(self, endpoint: Endpoint) -> None:
        if endpoint.down_until > time.monotonic():
            return  # already resting: late failures of requests sent before it went down
        endpoint.down_until = time.monotonic() + self.policy.cooldown
        logger.warning(
            "%s failed %d times in a row: out of rotation for %.0fs",
            redact_url(endpoint.url),
            endpoint.consecutive_failures,
            self.policy.cooldown,
        )


def open_endpoint(
    url: str, slots: int, timeout: float, api_key: str | None, tls: ssl.SSLContext
) -> Endpoint:
    """An endpoint with `slots` slots, each a client on its own one-connection session."""
    endpoint = Endpoint(url)
    endpoint.slots = [_open_slot(endpoint, timeout, api_key, tls) for _ in range(slots)]
    endpoint.idle = list(endpoint.slots)
    return endpoint


def _open_slot(
    endpoint: Endpoint, timeout: float, api_key: str | None, tls: ssl.SSLContext
) -> Slot:
    # Our own session, not huggingface_hub's default: that one refuses every request when
    # HF_HUB_OFFLINE=1, even to a server on localhost. Without an API key huggingface_hub sends
    # the user's HF token, wherever the server is: only Hugging Face's inference hosts get it.
    session = httpx2.AsyncClient(limits=ONE_CONNECTION, timeout=timeout, verify=tls)
    client = AsyncInferenceClient(base_url=endpoint.url, timeout=timeout, api_key=api_key)
    client._async_client = session  # private: the client has no public way to take one
    slot = Slot(endpoint, client, session)
    session.event_hooks["response"] = [slot.keep_headers]
    if api_key is None and not may_receive_hf_token(endpoint.url):
        session.event_hooks["request"] = [_drop_authorization]
    return slot
