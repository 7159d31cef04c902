"""The tgi and openai backends against real servers on 127.0.0.1.

- scripted echo servers: order, bounded concurrency per endpoint, spreading, parameter mapping;
- the TGI-protocol server of `tgi_server.py` backed by the real SmolLM2 model, with its
  requests and responses checked against TGI's OpenAPI schema when the anchor is present;
- a real llama.cpp server (`python -m llama_cpp.server`) for the OpenAI-compatible API.
"""

from __future__ import annotations

import inspect
import socket
import subprocess
import sys
import time

import httpx2
import pytest
from anchors import TGI_OPENAPI, absent
from huggingface_hub import constants
from optional_extras import require_extra
from tgi_schema import openapi_validator, request_check

from self_instruct.backends import load_backend
from self_instruct.backends.base import SamplingParams
from self_instruct.backends.endpoints import RetryPolicy
from self_instruct.backends.errors import RequestRejectedError
from self_instruct.backends.fields import sampling_fields
from self_instruct.backends.http import HTTPBackend
from self_instruct.backends.openai import OpenAIBackend, completions_url
from self_instruct.backends.tgi import TGIBackend, generate_parameters
from self_instruct.config import PipelineConfig
from self_instruct.testing.local_server import LocalServer
from self_instruct.testing.scripted_server import ScriptedApp
from self_instruct.testing.tgi_server import ModelTGIApp
from self_instruct.utils.redaction import API_KEY_ENV

GREEDY = SamplingParams(max_new_tokens=8)
PROMPTS = ["The capital of France is", "List three colors:"]


# --- scripted servers: concurrency and order -------------------------------------------------


class WaitsForOthers(ScriptedApp):
    """Holds the prompt "slow" until every other prompt has been answered (or 20 s pass)."""

    others: int = 0
    released: bool | None = None

    def handle(self, method, path, body):
        if body.get("inputs") == "slow":
            deadline = time.monotonic() + 20
            while len(self.finished) < self.others and time.monotonic() < deadline:
                time.sleep(0.01)
            self.released = len(self.finished) >= self.others
        return super().handle(method, path, body)


def test_slow_request_does_not_stall_the_others_and_order_is_kept():
    app = WaitsForOthers(latency=0.01)
    app.others = 10
    prompts = ["slow"] + [f"fast {i}" for i in range(10)]
    with LocalServer(app) as server:
        backend = TGIBackend([server.url], model="test-model", max_concurrency=2)
        completions = backend.generate(prompts, GREEDY)
        backend.close()
    assert app.released  # the ten others went through the second slot meanwhile
    assert app.finished[-1] == "slow"
    assert [c.text for c in completions] == [f"echo {p}" for p in prompts]


class AnswersWhenFull(ScriptedApp):
    """Holds requests until `full` were in flight at once (or 2 s pass), then `latency` more."""

    full: int = 3

    def _enter(self) -> None:
        super()._enter()
        deadline = time.monotonic() + 2
        while self.peak_in_flight < self.full and time.monotonic() < deadline:
            time.sleep(0.005)


def test_in_flight_is_bounded_per_endpoint_and_spread_over_endpoints():
    apps = [AnswersWhenFull(latency=0.2), AnswersWhenFull(latency=0.2)]
    prompts = [f"prompt {i}" for i in range(12)]
    with LocalServer(apps[0]) as one, LocalServer(apps[1]) as two:
        backend = OpenAIBackend([one.url, two.url], model="test-model", max_concurrency=3)
        completions = backend.generate(prompts, GREEDY)
        backend.close()
    assert [c.text for c in completions] == [f"echo {p}" for p in prompts]
    assert [app.peak_in_flight for app in apps] == [3, 3]  # reached on both, never passed
    served = [backend.usage.per_endpoint[url]["requests"] for url in (one.url, two.url)]
    assert sum(served) == 12 and min(served) >= 3


def test_chat_mode_and_v1_base_urls():
    app = ScriptedApp()
    with LocalServer(app) as server:
        backend = OpenAIBackend([f"{server.url}/v1"], model="test-model", chat=True)
        [completion] = backend.generate(["hello there"], GREEDY)
        backend.close()
    assert completion.text == "echo hello there"
    assert (completion.prompt_tokens, completion.completion_tokens) == (2, 3)
    assert (
        completions_url("http://h:1/v1")
        == completions_url("http://h:1")
        == "http://h:1/v1/completions"
    )


class CountsDetailRequests(ScriptedApp):
    """Counts the requests asking for details; `headers=False` drops TGI's token count headers."""

    headers: bool = True
    detail_requests: int = 0

    def handle(self, method, path, body):
        parameters = body["parameters"]
        asked = bool(parameters.get("details"))
        assert asked == bool(parameters.get("decoder_input_details"))  # both or neither
        self.detail_requests += asked
        reply = super().handle(method, path, body)
        reply.headers = reply.headers if self.headers else {}
        return reply


@pytest.mark.parametrize("headers", [True, False])
def test_tgi_counts_come_from_the_headers_or_else_the_details(headers):
    app = CountsDetailRequests()
    app.headers = headers
    prompts = [f"prompt number {i}" for i in range(10)]  # 3 tokens for the scripted server
    long = ["one two three four five six seven"]  # "echo" + 7 words: the limit of 8 tokens
    with LocalServer(app) as server:
        backend = TGIBackend([server.url], model="test-model", max_concurrency=2)
        completions = backend.generate(prompts, GREEDY)
        [at_limit] = backend.generate(long, GREEDY)
        backend.close()
    assert [(c.prompt_tokens, c.completion_tokens) for c in completions] == [(3, 4)] * 10
    assert {c.finish_reason for c in completions} == {"stop"}
    assert (at_limit.finish_reason, at_limit.completion_tokens) == ("length", 8)
    assert backend.usage.prompt_tokens == backend.usage.per_endpoint[server.url]["prompt_tokens"]
    assert backend.usage.prompt_tokens == 30 + 7
    # With the headers nothing asks for the details; without them the first wave (2 requests
    # sent before any answer) is sent again with the details, and every later request has them.
    assert app.detail_requests == (0 if headers else 11)
    assert sum(app.attempts.values()) == (11 if headers else 13)


def test_local_servers_are_reached_in_hub_offline_mode(monkeypatch):
    """huggingface_hub's default session refuses every request offline; ours must not."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with LocalServer(ScriptedApp()) as server:
        backend = TGIBackend([server.url], model="test-model")
        assert backend.generate(["hi"], GREEDY)[0].text == "echo hi"
        backend.close()


@pytest.mark.parametrize("api_key", [None, "sk-local-test"])
def test_credentials_go_only_where_they_belong(monkeypatch, api_key):
    """The key from the environment goes to every server, on every path; the user's HF token
    (which huggingface_hub adds by itself) never goes to a server outside Hugging Face."""
    monkeypatch.setenv("HF_TOKEN", "hf_the_users_own_token")
    if api_key:
        monkeypatch.setenv(API_KEY_ENV, api_key)
    else:
        monkeypatch.delenv(API_KEY_ENV, raising=False)
    with LocalServer(ScriptedApp()) as server:
        for backend, chat in [("tgi", False), ("openai", False), ("openai", True)]:
            config = PipelineConfig(backend=backend, endpoint=[server.url], chat=chat)
            client = load_backend(config)
            assert client.generate(["hi"], GREEDY)[0].text == "echo hi"
            client.close()
        seen = server.httpd.authorizations
    assert seen == [f"Bearer {api_key}" if api_key else None] * 3


def test_documented_defaults_are_the_real_ones():
    config = PipelineConfig()
    assert RetryPolicy().max_attempts == config.max_attempts
    defaults = inspect.signature(HTTPBackend.__init__).parameters
    assert defaults["timeout"].default == config.request_timeout
    assert defaults["max_concurrency"].default == config.max_concurrency


def test_sampling_params_map_to_what_each_protocol_accepts():
    sampled = SamplingParams(max_new_tokens=5, temperature=0.7, top_p=1.0, seed=3, stop=("\n",))
    assert generate_parameters(GREEDY) == {"max_new_tokens": 8, "stop": None}
    assert generate_parameters(sampled) == {
        "max_new_tokens": 5,
        "stop": ["\n"],
        "do_sample": True,
        "temperature": 0.7,
        "seed": 3,
    }  # top_p 1.0 left out: TGI wants it strictly below 1
    assert sampling_fields(GREEDY) == {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0}
    penalized = SamplingParams(max_new_tokens=5, presence_penalty=2.0, repetition_penalty=1.2)
    assert sampling_fields(penalized)["presence_penalty"] == 2.0
    assert generate_parameters(penalized)["repetition_penalty"] == 1.2


# --- the TGI protocol over the real model ----------------------------------------------------


@pytest.fixture(scope="module")
def embedded():
    from self_instruct.backends.transformers import TransformersBackend

    return TransformersBackend("embedded", batch_size=1)


@pytest.fixture(scope="module")
def tgi(embedded):
    with LocalServer(ModelTGIApp(embedded, check_request=request_check())) as server:
        yield server


def test_tgi_backend_matches_the_model_it_serves(embedded, tgi):
    backend = TGIBackend([tgi.url], model="smollm2", max_concurrency=2)
    remote = backend.generate(PROMPTS, GREEDY)
    local = [embedded.generate([prompt], GREEDY)[0] for prompt in PROMPTS]
    assert remote == local  # text, finish reason and both token counts
    assert backend.usage.prompt_tokens == sum(c.prompt_tokens for c in local) > 0

    stop = remote[0].text[3:6]  # a stop sequence the greedy text is known to contain
    [cut] = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=8, stop=(stop,)))
    assert cut.text == remote[0].text[: remote[0].text.find(stop)]
    assert cut.finish_reason == "stop"

    sampled = SamplingParams(8, temperature=0.7, top_p=0.5, repetition_penalty=1.2, seed=1)
    assert backend.generate(PROMPTS[:1], sampled)[0].completion_tokens > 0  # no 422
    backend.close()


def test_tgi_server_validation_error_stops_the_run(tgi):
    backend = TGIBackend([tgi.url], model="smollm2", retry=RetryPolicy(max_attempts=1))
    too_many_stops = SamplingParams(max_new_tokens=4, stop=("a", "b", "c", "d", "e"))
    with pytest.raises(RequestRejectedError, match=r"HTTP 422.*validation"):
        backend.generate(PROMPTS[:1], too_many_stops)
    backend.close()


def test_tgi_server_answers_in_tgis_published_schema(tgi):
    schemas = {
        name: openapi_validator(name) for name in ("GenerateResponse", "Info", "ErrorResponse")
    }
    if None in schemas.values():
        pytest.skip(absent(TGI_OPENAPI))
    request = {"inputs": PROMPTS[0], "parameters": {"max_new_tokens": 4, "details": True}}
    request["parameters"] |= {"decoder_input_details": True, "do_sample": True, "seed": 1}
    schemas["GenerateResponse"](httpx2.post(f"{tgi.url}/generate", json=request).json())
    schemas["Info"](httpx2.get(f"{tgi.url}/info").json())
    invalid = httpx2.post(f"{tgi.url}/generate", json={"inputs": "x", "parameters": {"top_p": 1.0}})
    assert invalid.status_code == 422
    schemas["ErrorResponse"](invalid.json())
    assert httpx2.get(f"{tgi.url}/health").status_code == 200


# --- the OpenAI-compatible API of a real llama.cpp server -----------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def llama_cpp_server():
    """`python -m llama_cpp.server` with the SmolLM2 GGUF on a free loopback port."""
    require_extra("serve")
    from self_instruct.backends.transformers import embedded_gguf_path

    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path())]
    command += ["--host", "127.0.0.1", "--port", str(port), "--model_alias", "smollm2"]
    command += ["--n_ctx", "2048", "--n_threads", "2", "--verbose", "False"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama.cpp server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx2.get(f"{url}/v1/models").status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.5)
    pytest.fail(f"llama.cpp server not up at {url} after {seconds}s")


def test_openai_backend_against_llama_cpp(llama_cpp_server):
    backend = OpenAIBackend([llama_cpp_server], model="smollm2", max_concurrency=2)
    first = backend.generate(PROMPTS, GREEDY)
    again = backend.generate(PROMPTS, GREEDY)
    assert first == again  # temperature 0 is greedy
    assert all(c.text and c.finish_reason == "length" and c.completion_tokens == 8 for c in first)
    assert all(c.prompt_tokens > 0 for c in first)

    stop = first[0].text[3:6]
    [cut] = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=8, stop=(stop,)))
    assert cut.text == first[0].text[: first[0].text.find(stop)]
    assert cut.finish_reason == "stop"

    stats = backend.usage.per_endpoint[llama_cpp_server]
    assert stats["requests"] == backend.usage.requests == 5
    assert stats["completion_tokens"] == backend.usage.completion_tokens
    backend.close()


def test_openai_chat_backend_against_llama_cpp(llama_cpp_server):
    backend = OpenAIBackend([llama_cpp_server], model="smollm2", chat=True)
    sampled = SamplingParams(max_new_tokens=8, temperature=0.7, presence_penalty=2.0, seed=1)
    [completion] = backend.generate(["Name a fruit."], sampled)
    assert completion.text and 0 < completion.completion_tokens <= 8
    assert completion.prompt_tokens > 4  # the chat template wraps the prompt
    backend.close()
