"""Fault injection against real loopback servers: 503s, hangs, dropped connections, bad JSON, 4xx.

Faults are scheduled by (prompt, attempt), so every run sees the same faults whatever order the
requests arrive in; backoff and cool-downs are shortened so the module runs in seconds.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from self_instruct.backends.base import SamplingParams
from self_instruct.backends.endpoints import Endpoint, EndpointPool, RetryPolicy, Slot
from self_instruct.backends.http import EndpointsUnavailableError, RequestRejectedError
from self_instruct.backends.openai import OpenAIBackend
from self_instruct.backends.tgi import TGIBackend
from self_instruct.testing.local_server import LocalServer
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
