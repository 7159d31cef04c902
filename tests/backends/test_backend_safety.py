"""Server backends against hostile or broken servers on 127.0.0.1: answers that trickle in, 200s
that are not what the protocol promises, huge error pages, refused keys, and credentials where
they do not belong. Each test fails on the code before the fix it names (issue #13)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cli_runs import run_cli
from script_modules import load_script
from test_faults import fast_retries

from self_instruct.backends import load_backend
from self_instruct.backends.base import SamplingParams
from self_instruct.backends.errors import RequestRejectedError
from self_instruct.backends.openai import OpenAIBackend
from self_instruct.backends.tgi import TGIBackend
from self_instruct.backends.urls import may_receive_hf_token
from self_instruct.config import PipelineConfig
from self_instruct.errors import ConfigError
from self_instruct.export.provenance import provenance
from self_instruct.generation.pipeline import Pipeline
from self_instruct.layout import CARD, LOG_FILE
from self_instruct.runlog.log import read_log
from self_instruct.runlog.records import MAX_REJECTED_CHARS
from self_instruct.testing.local_server import LocalServer, Reply, tgi_error
from self_instruct.testing.scripted_server import ScriptedApp
from self_instruct.testing.simulated_server import LatencyModel, SimulatedApp
from self_instruct.testing.tgi_server import tgi_headers
from self_instruct.utils.redaction import API_KEY_ENV, redact_urls

PARAMS = SamplingParams(max_new_tokens=8)
TGI_COUNTS = {"x-prompt-tokens": "2", "x-generated-tokens": "3"}
PROTOCOLS = [(TGIBackend, {}), (OpenAIBackend, {}), (OpenAIBackend, {"chat": True})]
SECRET = "s3cret-Pa55"
SERVER = {"SI_TEST_REAL_MODEL": "1"}  # the real server backends under the CLI


class FirstAnswers(ScriptedApp):
    """Answers each prompt's first `times` requests with `first`, later ones with the echo."""

    first: Reply | None = None
    times: int = 1

    def handle(self, method, path, body):
        prompt = body["messages"][-1]["content"] if "messages" in body else None
        prompt = prompt or body.get("inputs") or body.get("prompt")
        if self.attempts[prompt] < self.times:
            self.attempts[prompt] += 1
            return self.first
        return super().handle(method, path, body)


def serve_first(first: Reply, times: int = 1) -> FirstAnswers:
    app = FirstAnswers()
    app.first, app.times = first, times
    return app


def answer(text: str) -> bytes:
    """One body that is a valid answer in all three protocols."""
    choice = {"index": 0, "text": text, "finish_reason": "stop"}
    choice["message"] = {"role": "assistant", "content": text}
    usage = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    return json.dumps({"generated_text": text, "choices": [choice], "usage": usage}).encode()


def build(backend_cls, url, **kwargs):
    options = {"model": "test-model", "timeout": 1.0, "retry": fast_retries(), **kwargs}
    return backend_cls([url], **options)


@pytest.mark.parametrize(("backend_cls", "options"), PROTOCOLS)
def test_an_answer_that_trickles_in_is_cut_off_by_the_request_timeout(backend_cls, options):
    """Item 9: one byte every 0.1 s keeps each read under the 1 s timeout; the whole answer
    (about 200 bytes, valid) would take 20 s. The attempt is cut at 1 s and retried."""
    app = serve_first(Reply(200, answer("late"), drip=0.1, headers=TGI_COUNTS))
    with LocalServer(app) as server:
        backend = build(backend_cls, server.url, **options)
        [completion] = backend.generate(["prompt 0"], PARAMS)
        backend.close()
    assert completion.text == "echo prompt 0"  # the retry's answer, not the trickled one
    assert app.attempts["prompt 0"] == 2
    assert backend.usage.per_endpoint[server.url]["failed_attempts"] == 1


MALFORMED = {
    "invalid UTF-8": (
        b'{"generated_text": "\xff\xfe", "choices": [{"text": "\xff", "finish_reason": "stop"}]}'
    ),
    "text a number": (
        b'{"generated_text": 123, "choices": [{"text": 123, "finish_reason": "stop", '
        b'"index": 0, "message": {"role": "assistant", "content": 123}}], '
        b'"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}'
    ),
    "counts not numbers": (
        b'{"generated_text": "x", "details": {"finish_reason": "length", "generated_tokens": '
        b'"many", "prefill": [], "tokens": []}, "choices": [{"text": "x", "finish_reason": '
        b'"stop", "index": 0, "message": {"role": "assistant", "content": "x"}}], '
        b'"usage": {"prompt_tokens": "abc", "completion_tokens": [], "total_tokens": 2}}'
    ),
    "a list": b"[1, 2]",
    "a string": b'"hello"',
}


# (OpenAI's plain completions already took a list or a string for a malformed answer.)
MALFORMED_CASES = [
    (backend_cls, options, kind)
    for backend_cls, options in PROTOCOLS
    for kind in MALFORMED
    if not (backend_cls is OpenAIBackend and not options and kind in ("a list", "a string"))
]


@pytest.mark.parametrize(("backend_cls", "options", "kind"), MALFORMED_CASES)
def test_a_malformed_200_is_retried_never_a_traceback(backend_cls, options, kind):
    # TGI's counts are in its details when its headers are missing: the first answer (no
    # headers) makes it ask for the details, and the second, malformed too, is retried.
    tgi_details = kind == "counts not numbers" and backend_cls is TGIBackend
    headers = {} if tgi_details else TGI_COUNTS
    app = serve_first(Reply(200, MALFORMED[kind], headers=headers), times=1 + tgi_details)
    with LocalServer(app) as server:
        backend = build(backend_cls, server.url, **options)
        [completion] = backend.generate(["prompt 0"], PARAMS)
        backend.close()
    assert completion.text == "echo prompt 0"
    assert (completion.prompt_tokens, completion.completion_tokens) == (2, 3)
    assert app.attempts["prompt 0"] == 2 + tgi_details


class Uncounted(ScriptedApp):
    """Answers without token counts: OpenAI's `usage` left out (or only `kept` of it), TGI's
    headers left out and its details without the prompt's tokens."""

    kept: tuple[str, ...] = ()

    def handle(self, method, path, body):
        reply = super().handle(method, path, body)
        if usage := {k: v for k, v in reply.body.pop("usage", {}).items() if k in self.kept}:
            reply.body["usage"] = usage
        reply.headers = {}
        if "details" in reply.body:
            reply.body["details"]["prefill"] = []
        return reply


@pytest.mark.parametrize(("backend_cls", "options"), PROTOCOLS)
def test_an_answer_without_token_counts_is_accepted_and_counts_unknown(backend_cls, options):
    """Item 3 of issue 23: `usage` is optional in the OpenAI protocol; the counts are unknown
    (None), never 0, and so are the sums they go into."""
    app = Uncounted()
    with LocalServer(app) as server:
        backend = build(backend_cls, server.url, retry=fast_retries(max_attempts=1), **options)
        [completion] = backend.generate(["prompt 0"], PARAMS)
        backend.close()
    assert completion.text == "echo prompt 0"
    assert completion.prompt_tokens is None
    expected = 3 if backend_cls is TGIBackend else None  # TGI's details count what it made
    assert completion.completion_tokens == expected
    assert (backend.usage.requests, backend.usage.prompt_tokens) == (1, None)
    assert backend.usage.per_endpoint[server.url]["prompt_tokens"] is None


@pytest.mark.parametrize("options", [{}, {"chat": True}])
def test_a_partial_usage_keeps_what_it_says(options):
    app = Uncounted()
    app.kept = ("prompt_tokens",)
    with LocalServer(app) as server:
        backend = build(OpenAIBackend, server.url, retry=fast_retries(max_attempts=1), **options)
        [completion] = backend.generate(["prompt 0"], PARAMS)
        backend.close()
    assert (completion.prompt_tokens, completion.completion_tokens) == (2, None)


def test_a_chat_answer_with_null_content_is_an_empty_answer():
    """The chat protocol allows `content: null` (a reasoning model that spent its tokens
    thinking): an empty text, not a malformed answer retried to no end."""
    choice = {"index": 0, "message": {"role": "assistant", "content": None}}
    body = {"choices": [choice | {"finish_reason": "length"}]}
    with LocalServer(serve_first(Reply(200, body))) as server:
        backend = build(OpenAIBackend, server.url, chat=True, retry=fast_retries(max_attempts=1))
        [completion] = backend.generate(["prompt 0"], PARAMS)
        backend.close()
    assert (completion.text, completion.finish_reason) == ("", "length")


def test_a_run_on_a_server_without_usage_says_its_token_counts_are_unknown(tmp_path):
    """Through the CLI: the run finishes, and the card's usage says unknown, not 0."""
    out = tmp_path / "out"
    fast = LatencyModel(base=0.0, per_token=0.0)
    with LocalServer(SimulatedApp(fast, usage=False)) as server:
        args = ["generate", "--backend", "openai", "--endpoint", server.url, "--output", str(out)]
        done = run_cli([*args, "--num-instructions", "5", "--max-attempts", "1"], SERVER)
    assert done.returncode == 0, done.stderr
    card = (out / CARD).read_text()
    assert "| prompt_tokens | unknown |" in card and "| completion_tokens | unknown |" in card
    records = list(read_log(out / ".self-instruct"))
    markers = [r for r in records if r["type"] == "round"]
    assert markers and all(r["requests"] > 0 and r["prompt_tokens"] is None for r in markers)

    bench = load_script("bench_yield")  # the benchmark reads the same markers
    row = bench.yield_row("completion", records, prompts=5)
    assert row[1] > 0 and (row[5], row[7]) == (None, None)
    assert bench.table([row]).endswith("| unknown | 0 | unknown |")


HUGE_PAGE = b"<html><body>" + b"Service unavailable. " * 100_000 + b"</body></html>"  # 2 MB


def test_error_pages_are_cut_in_messages_and_logs(caplog):
    rejected = ScriptedApp(faults=lambda prompt, attempt: "400")
    rejected._fault = lambda fault: Reply(400, HUGE_PAGE)
    with LocalServer(rejected) as server, caplog.at_level(logging.WARNING):
        backend = build(TGIBackend, server.url)
        with pytest.raises(RequestRejectedError) as error:
            backend.generate(["prompt 0"], PARAMS)
        backend.close()
    message = str(error.value)
    assert "HTTP 400" in message and "Service unavailable." in message
    assert "more characters" in message and len(message) < 1500

    failing = ScriptedApp(faults=lambda prompt, attempt: "503")
    failing._fault = lambda fault: Reply(503, HUGE_PAGE)
    with LocalServer(failing) as server, caplog.at_level(logging.WARNING):
        backend = build(OpenAIBackend, server.url, retry=fast_retries(max_attempts=2))
        assert backend.generate(["prompt 0"], PARAMS) == [None]
        backend.close()
    lines = [record.getMessage() for record in caplog.records]
    assert any("Retrying" in line and "HTTP 503" in line for line in lines)
    assert any("failed for good" in line and "HTTP 503" in line for line in lines)
    assert max(map(len, lines)) < 1500


REFUSALS = [(401, API_KEY_ENV), (403, API_KEY_ENV), (404, "--endpoint")]


@pytest.mark.parametrize(("status", "hint"), REFUSALS)
def test_refusals_say_what_to_change(status, hint):
    app = ScriptedApp(faults=lambda prompt, attempt: "refused")
    app._fault = lambda fault: tgi_error(status, "no", "authentication")
    with LocalServer(app) as server:
        backend = build(TGIBackend, server.url)
        with pytest.raises(RequestRejectedError, match=f"HTTP {status}") as error:
            backend.generate(["prompt 0"], PARAMS)
        backend.close()
    assert hint in str(error.value)
    assert "--temperature" not in str(error.value)  # not blamed on the generation options


# --- credentials ------------------------------------------------------------------------------


def test_the_hf_token_goes_only_to_hugging_faces_inference_hosts_over_https():
    assert may_receive_hf_token("https://router.huggingface.co/v1")
    assert may_receive_hf_token("https://api-inference.huggingface.co/models/x")
    assert may_receive_hf_token("https://abc123.us-east-1.aws.endpoints.huggingface.cloud")
    refused = [
        "http://abc123.us-east-1.aws.endpoints.huggingface.cloud",  # plain http
        "http://router.huggingface.co/v1",
        "https://someone.hf.space",  # a Space runs anyone's code
        "https://huggingface.co",  # the Hub is no inference server
        "https://router.huggingface.co.example.com",
        "https://evil-endpoints.huggingface.cloud.example.com",
        "https://endpoints.huggingface.cloud.evil.com",
        "http://127.0.0.1:8080",
    ]
    assert [url for url in refused if may_receive_hf_token(url)] == []


def test_a_space_gets_no_hf_token(monkeypatch):
    """The request hook that strips the token is on for a Space's URL (it was not before)."""
    monkeypatch.setenv("HF_TOKEN", "hf_the_users_own_token")
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    backend = load_backend(PipelineConfig(backend="tgi", endpoint=["https://someone.hf.space"]))
    backend.generate([], PARAMS)  # opens the endpoint's sessions
    hooks = [slot.session.event_hooks["request"] for slot in backend._pool.endpoints[0].slots]
    backend.close()
    assert all(hook and hook[0].__name__ == "_drop_authorization" for hook in hooks)


@pytest.mark.parametrize(
    "url", [f"http://user:{SECRET}@127.0.0.1:9", f"http://127.0.0.1:9/?api_key={SECRET}"]
)
def test_credentials_in_an_endpoint_url_are_refused_without_repeating_them(url):
    with pytest.raises(ConfigError, match=API_KEY_ENV) as error:
        load_backend(PipelineConfig(backend="openai", endpoint=[url]))
    assert SECRET not in str(error.value) and "127.0.0.1:9" in str(error.value)


def test_credentials_in_an_endpoint_url_through_the_cli(tmp_path):
    out = tmp_path / "out"
    with LocalServer(ScriptedApp()) as server:
        url = server.url.replace("http://", f"http://me:{SECRET}@")
        args = ["generate", "--backend", "tgi", "--endpoint", url, "--output", str(out)]
        done = run_cli(args, {"SI_TEST_REAL_MODEL": "1"})
        assert server.httpd.authorizations == []  # nothing was sent
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert API_KEY_ENV in done.stderr and SECRET not in done.stderr + done.stdout
    assert not out.exists()


def test_urls_are_redacted_wherever_the_tool_writes_them():
    command = (
        f"self-instruct generate --endpoint http://me:{SECRET}@gpu1:8000/v1 "
        f"--resume-from https://host/x?token={SECRET}#frag --output out"
    )
    assert redact_urls(command) == (
        "self-instruct generate --endpoint http://***@gpu1:8000/v1 "
        "--resume-from https://host/x?***#*** --output out"
    )
    written = provenance(PipelineConfig(), command, usage={})
    assert SECRET not in str(written)  # the public card names no endpoint at all
    assert (
        written["command"] == "self-instruct generate --endpoint URL --resume-from URL --output out"
    )


# --- a backend that stops the run: finished rounds kept, the resume command printed -----------


def after_first_round(out: Path, fault: str):
    """A fault for every request once the run log holds a finished round: the run then has
    something to keep and to resume (a failure before it leaves no folder at all)."""

    def faults(prompt: str, attempt: int) -> str | None:
        log = out / ".self-instruct" / "log.jsonl"
        return fault if log.exists() and b'"type": "round"' in log.read_bytes() else None

    return faults


def stops_with(out: Path, server_url: str, *extra: str) -> str:
    args = ["generate", "--backend", "tgi", "--endpoint", server_url, "--output", str(out)]
    args += ["--num-instructions", "40", "--batch-size", "2", *extra]
    # A lag of one round: requests are still to be sent when the first round is logged (with
    # the default, this fast server has answered all that the run needs by then).
    args += ["--sample-lag", "2"]
    done = run_cli(args, {"SI_TEST_REAL_MODEL": "1"})
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "Every finished round is kept" in done.stderr, done.stderr
    assert f"To continue: self-instruct generate --output {out} --resume" in done.stderr
    return done.stderr


def test_a_refused_key_stops_the_run_with_the_resume_command(tmp_path):
    app = ScriptedApp(faults=after_first_round(tmp_path / "out", "401"))
    app._fault = lambda fault: tgi_error(401, "Unauthorized", "authentication")
    with LocalServer(app) as server:
        stderr = stops_with(tmp_path / "out", server.url)
    assert "HTTP 401" in stderr and API_KEY_ENV in stderr


def test_a_server_gone_stops_the_run_with_the_resume_command(tmp_path):
    app = ScriptedApp(faults=after_first_round(tmp_path / "out", "drop"))
    with LocalServer(app) as server:
        stderr = stops_with(tmp_path / "out", server.url, "--max-attempts", "1")
    assert "failed for good" in stderr  # the round is not logged: a resume sends it again


# --- huge answers: the run log keeps rejected texts cut short -------------------------------


HUGE_ITEM = " ".join(["word"] * 200_000)


class HugeAnswers(ScriptedApp):
    """Answers every prompt with one 1 MB list item (200,000 words)."""

    def handle(self, method, path, body):
        return Reply(200, {"generated_text": " " + HUGE_ITEM}, headers=tgi_headers(3, 5))  # "stop"


def test_huge_answers_are_logged_cut_short(tmp_path):
    config = PipelineConfig(backend="tgi", num_instructions=1, batch_size=2, patience=2)
    with LocalServer(HugeAnswers()) as server:
        backend = build(TGIBackend, server.url, timeout=60.0)
        pipeline = Pipeline(config, tmp_path / "run", backend=backend, progress=False)
        assert list(pipeline) == []  # 2 rounds of 2 answers, each rejected as too long
        backend.close()
    log = tmp_path / "run" / LOG_FILE
    rejected = [r for r in read_log(tmp_path / "run") if r["type"] == "rejected"]
    assert [r["reason"] for r in rejected] == ["too_long"] * 4
    cut = f"[... {len(HUGE_ITEM) - MAX_REJECTED_CHARS} more characters]"
    assert all(r["text"].startswith("Word word") and r["text"].endswith(cut) for r in rejected)
    assert log.stat().st_size < 10 * MAX_REJECTED_CHARS  # 4 MB before
