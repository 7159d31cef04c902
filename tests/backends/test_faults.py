"""Fault injection against real loopback servers: 503s, hangs, dropped connections, bad JSON, 4xx,
429s that say when to come back.

Faults are scheduled by (prompt, attempt), so every run sees the same faults whatever order the
requests arrive in; backoff and cool-downs are shortened so the module runs in seconds.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import socket
import threading
import time

import httpx2
import pytest

from self_instruct.backends.base import SamplingParams
from self_instruct.backends.endpoints import Endpoint, EndpointPool, RetryPolicy, Slot
from self_instruct.backends.errors import (
    EndpointsUnavailableError,
    RequestRejectedError,
    is_transient,
    response_of,
)
from self_instruct.backends.openai import OpenAIBackend
from self_instruct.backends.retries import retry_after
from self_instruct.backends.tgi import TGIBackend
from self_instruct.testing.local_server import LocalServer, Reply
from self_instruct.testing.scripted_server import ScriptedApp

BACKENDS = [TGIBackend, OpenAIBackend]
PARAMS = SamplingParams(max_new_tokens=8, stop=("###",))
TIMEOUT = 0.5  # seconds; a "hang" fault waits longer than this


def fast_retries(**overrides) -> RetryPolicy:
    return RetryPolicy(
        **{"initial_wait": 0.01, "max_wait": 0.05, "jitter": 0.01, "cooldown": 0.2, **overrides}
    )


@pytest.fixture
def make():
    """Build backends with test-sized timeouts and retries; close them after the test."""
    made = []

    def build(backend_cls, urls, **kwargs):
        kwargs = {"max_concurrency": 4, "timeout": TIMEOUT, "retry": fast_retries(), **kwargs}
        made.append(backend_cls(urls, model="test-model", **kwargs))
        return made[-1]

    yield build
    for backend in made:
        backend.close()


def dead_url() -> str:
    """A loopback port nobody listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def number(prompt: str) -> int:
    return int(prompt.split()[1])


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_transient_faults_are_retried_and_order_is_kept(make, backend_cls):
    schedule = ("503", "hang", "drop", "badjson", None)
    app = ScriptedApp(
        latency=0.01,
        hang=3.0,
        faults=lambda prompt, attempt: schedule[number(prompt) % 5] if attempt == 0 else None,
    )
    prompts = [f"prompt {i} ###tail" for i in range(20)]
    with LocalServer(app) as server:
        backend = make(backend_cls, [server.url], retry=fast_retries(failures_to_cooldown=100))
        completions = backend.generate(prompts, PARAMS)

    assert [c.text for c in completions] == [f"echo prompt {i} " for i in range(20)]
    assert {c.finish_reason for c in completions} == {"stop"}  # cut at "###"
    faulted = sum(app.outcomes[f] for f in schedule if f)
    assert faulted == 16 and app.outcomes["ok"] == 20
    usage = backend.usage
    assert (usage.requests, usage.failed_requests) == (20, 0)
    assert usage.prompt_tokens == 20 * 3 and usage.completion_tokens == 20 * 4
    stats = usage.per_endpoint[server.url]
    assert stats["requests"] == 20 and stats["failed_attempts"] == faulted


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_request_failing_for_good_comes_back_as_none_and_is_counted(make, backend_cls):
    app = ScriptedApp(faults=lambda prompt, attempt: "503" if "doomed" in prompt else None)
    prompts = ["prompt 0", "prompt 1 doomed", "prompt 2"]
    with LocalServer(app) as server:
        retry = fast_retries(max_attempts=3, failures_to_cooldown=100)
        backend = make(backend_cls, [server.url], retry=retry)
        completions = backend.generate(prompts, PARAMS)

    assert completions[1] is None
    assert [c.text for c in (completions[0], completions[2])] == ["echo prompt 0", "echo prompt 2"]
    assert app.attempts["prompt 1 doomed"] == 3
    assert (backend.usage.requests, backend.usage.failed_requests) == (2, 1)
    assert backend.usage.per_endpoint[server.url]["failed_attempts"] == 3


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_bad_request_stops_the_run_with_the_server_message(make, backend_cls):
    app = ScriptedApp(faults=lambda prompt, attempt: "400" if "bad" in prompt else None)
    with LocalServer(app) as server:
        backend = make(backend_cls, [server.url])
        with pytest.raises(RequestRejectedError, match=r"HTTP 400.*must be <= 4096"):
            backend.generate(["prompt 0", "prompt 1 bad", "prompt 2"], PARAMS)
    assert app.attempts["prompt 1 bad"] == 1  # never retried


def test_failing_endpoint_leaves_rotation_and_the_healthy_one_serves_all(make):
    app = ScriptedApp(latency=0.01)
    dead = dead_url()
    with LocalServer(app) as server:
        retry = fast_retries(failures_to_cooldown=2, cooldown=60.0)
        backend = make(TGIBackend, [dead, server.url], max_concurrency=2, retry=retry)
        completions = backend.generate([f"prompt {i}" for i in range(20)], PARAMS)

    assert [c.text for c in completions] == [f"echo prompt {i}" for i in range(20)]
    stats = backend.usage.per_endpoint
    # Requests already sent when it went down may fail too; none is sent after.
    assert 2 <= stats[dead]["failed_attempts"] <= 2 + 2 - 1
    assert stats[dead]["requests"] == 0 and stats[server.url]["requests"] == 20
    assert backend.usage.failed_requests == 0


def test_every_endpoint_down_raises(make):
    urls = [dead_url(), dead_url()]
    # A cool-down shorter than the batch: over by the time the last request gives up, and the
    # endpoints have still not answered once.
    retry = fast_retries(max_attempts=2, failures_to_cooldown=1, cooldown=0.01)
    backend = make(OpenAIBackend, urls, retry=retry)
    match = "3 of 3 requests failed.*Last error: ConnectError"
    with pytest.raises(EndpointsUnavailableError, match=match) as error:
        backend.generate(["prompt 0", "prompt 1", "prompt 2"], PARAMS)
    assert all(url in str(error.value) for url in urls)
    assert backend.usage.failed_requests == 3
    backend.close()  # and once more by the fixture: safe twice


def test_waiters_get_the_slots_back_when_a_cool_down_ends():
    """A release wakes one waiter; slots of a resting endpoint come back without any release."""

    async def scenario() -> list[Slot]:
        endpoint = Endpoint("http://127.0.0.1:1")
        endpoint.slots = [Slot(endpoint, client=None, session=None) for _ in range(2)]
        endpoint.idle = list(endpoint.slots)
        pool = EndpointPool([endpoint], fast_retries(failures_to_cooldown=1, cooldown=0.1))
        held = [await pool.acquire(), await pool.acquire()]
        waiters = [asyncio.ensure_future(pool.acquire()) for _ in range(3)]
        await asyncio.sleep(0)  # all three wait, with no timeout: nothing is down yet
        pool.failed(endpoint)  # down for 0.1 s: the two released slots wait for it
        for slot in held:
            pool.release(slot)
        await asyncio.sleep(0.05)
        assert not any(waiter.done() for waiter in waiters)
        first = await asyncio.wait_for(asyncio.gather(*waiters[:2]), timeout=2)
        pool.release(first[0])
        return [*first, await asyncio.wait_for(waiters[2], timeout=2)]

    assert len(set(asyncio.run(scenario()))) == 2  # three acquisitions of the two slots


# --- Retry-After ------------------------------------------------------------------------------


def http_date_in(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize(
    ("backend_cls", "status", "retry_after"),
    [
        (TGIBackend, 429, lambda: "2"),
        (OpenAIBackend, 429, lambda: "2"),
        (OpenAIBackend, 503, lambda: "2"),
        (TGIBackend, 429, lambda: http_date_in(3)),
    ],
    ids=["tgi-429-seconds", "openai-429-seconds", "openai-503-seconds", "tgi-429-http-date"],
)
def test_retry_after_is_honoured(make, backend_cls, status, retry_after):
    """The second request arrives no sooner than the server asked (2 s; an HTTP date 3 s ahead
    on a clock of whole seconds is at least 2 s), though the backoff alone would be 0.01 s."""
    app = ScriptedApp(faults=lambda prompt, attempt: "429" if attempt == 0 else None)
    app.retry_after = retry_after
    if status == 503:
        app._fault = lambda fault: Reply(
            503, {"error": "busy"}, headers={"Retry-After": retry_after()}
        )
    with LocalServer(app) as server:
        backend = make(backend_cls, [server.url], timeout=10.0)
        [completion] = backend.generate(["prompt 0"], PARAMS)
    assert completion.text == "echo prompt 0"
    first, second = app.arrivals["prompt 0"]
    assert second - first >= 1.9


def test_an_absurd_retry_after_is_capped_by_the_request_deadline(make, caplog):
    """Ten hours asked: the retry comes within the attempt's deadline (1 s) and says so."""
    app = ScriptedApp(faults=lambda prompt, attempt: "429" if attempt == 0 else None)
    app.retry_after = lambda: "36000"
    with LocalServer(app) as server, caplog.at_level(logging.WARNING):
        backend = make(TGIBackend, [server.url], timeout=1.0)
        [completion] = backend.generate(["prompt 0"], PARAMS)
    assert completion.text == "echo prompt 0" and app.attempts["prompt 0"] == 2
    [warning] = [r.getMessage() for r in caplog.records if "Retrying in" in r.getMessage()]
    waited = float(re.search(r"Retrying in ([\d.]+)s", warning)[1])
    assert waited <= 1.0
    assert "Retry-After: 36000s, capped by the --request-timeout deadline" in warning


def response(status: int, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, headers=headers)


def test_retry_after_values():
    now = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after(response(429, **{"Retry-After": "120"})) == 120.0
    dated = {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": now}
    assert retry_after(response(503, **dated)) == 30.0  # against the server's clock
    assert retry_after(response(503, **{"Retry-After": now})) == 0.0  # in the past: at once
    assert retry_after(response(429, **{"Retry-After": "soon"})) is None  # not a value: backoff
    assert retry_after(response(429, **{"Retry-After": "-5"})) is None
    latin = httpx2.Response(429, headers=[(b"Retry-After", "²".encode("latin-1"))])
    assert latin.headers["retry-after"] == "²" and retry_after(latin) is None
    assert retry_after(response(500, **{"Retry-After": "120"})) is None  # only 429 and 503
    assert retry_after(response(429)) is None


class Wrapped(RuntimeError):
    """An error that may carry the HTTP response behind it, as huggingface_hub's do."""

    def __init__(self, message: str, response: httpx2.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


def test_the_response_walk_ends_on_a_looping_chain():
    """An error raised "from" itself, or from one behind it (as hub/push.py's 412 once was): finding
    the response behind it, and so whether to retry, ends instead of spinning for ever."""
    itself = Wrapped("itself")
    itself.__cause__ = itself
    answer = response(503)
    outer, inner = Wrapped("outer"), Wrapped("inner", answer)
    outer.__cause__, inner.__cause__ = inner, outer
    found: list = []

    def walk() -> None:
        found.extend([response_of(itself), is_transient(itself), response_of(outer)])
        found.append(is_transient(outer))

    walker = threading.Thread(target=walk, daemon=True)
    walker.start()
    walker.join(timeout=10)
    assert not walker.is_alive(), "response_of spins on a looping chain"
    assert found == [None, False, answer, True]
