"""No key or token in anything the tool prints, logs or writes, even where a server quotes it.

Some gateways quote the request back in their error pages, `Authorization` header included: the
servers here do (the "quote" fault of `ScriptedApp`), and the real CLI runs against them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cli_runs import run_cli
from test_faults import fast_retries

from self_instruct.backends.base import SamplingParams
from self_instruct.backends.errors import EndpointsUnavailableError, RequestRejectedError
from self_instruct.backends.openai import OpenAIBackend
from self_instruct.backends.tgi import TGIBackend
from self_instruct.cli.generate import EXIT_REQUESTS_FAILED
from self_instruct.testing.local_server import LocalServer, Reply
from self_instruct.testing.scripted_server import ScriptedApp
from self_instruct.utils.redaction import API_KEY_ENV, redact

KEY = "sk-local-4f9c2e7d1b"  # SELF_INSTRUCT_API_KEY in these tests
HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123"
PARAMS = SamplingParams(max_new_tokens=8)


def quoting(status: int = 503) -> ScriptedApp:
    """Answers every request with an error page that quotes the request's headers."""
    app = ScriptedApp(faults=lambda prompt, attempt: "quote")
    if status != 503:
        app._fault = lambda fault: Reply(status, {"error": "denied"}, quote_request=True)
    return app


def test_redact_hides_keys_tokens_and_authorization_values(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, KEY)
    monkeypatch.setenv("HF_TOKEN", "hf_the_users_own")
    texts = {
        f"upstream said: key {KEY} is over quota": "upstream said: key *** is over quota",
        '{"headers": {"authorization": "Bearer abc.DEF-123"}}': (
            '{"headers": {"authorization": "***"}}'
        ),
        "Authorization: Basic dXNlcjpwYXNz\nnext line": "Authorization: ***\nnext line",
        "token Bearer xyz789 was refused": "token Bearer *** was refused",
        f"the token {HF} is invalid": "the token *** is invalid",
        "hf_the_users_own": "***",
        "http://me:pw@gpu1:8000/v1?token=t": "http://***@gpu1:8000/v1?***",
        "HTTP 503 from http://gpu1:8000/generate: overloaded": (
            "HTTP 503 from http://gpu1:8000/generate: overloaded"  # nothing secret: unchanged
        ),
    }
    assert {text: redact(text) for text in texts} == texts


@pytest.mark.parametrize("backend_cls", [TGIBackend, OpenAIBackend])
def test_a_quoted_key_is_masked_in_errors_and_logs(monkeypatch, caplog, backend_cls):
    monkeypatch.setenv(API_KEY_ENV, KEY)
    retry = fast_retries(max_attempts=2, failures_to_cooldown=1)
    messages = []
    with caplog.at_level(logging.DEBUG):
        for status, error in [(503, EndpointsUnavailableError), (401, RequestRejectedError)]:
            with LocalServer(quoting(status)) as server:
                backend = backend_cls([server.url], model="m", api_key=KEY, retry=retry)
                with pytest.raises(error) as raised:
                    backend.generate(["prompt 0"], PARAMS)
                backend.close()
                assert server.httpd.authorizations[0] == f"Bearer {KEY}"  # it was sent
            messages.append(str(raised.value))
    logged = [record.getMessage() for record in caplog.records]
    assert any("Retrying" in line and "upstream unavailable" in line for line in logged)
    assert all("authorization" in message.lower() for message in messages)  # the page was quoted
    assert [text for text in messages + logged if KEY in text] == []


def output_text(folder: Path) -> str:
    """Every file under the output folder, as text."""
    files = [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []
    return "".join(path.read_bytes().decode("utf-8", "replace") for path in files)


@pytest.mark.parametrize(("status", "exit_status"), [(503, EXIT_REQUESTS_FAILED), (401, 1)])
def test_the_cli_never_shows_a_key_a_server_quotes(tmp_path, status, exit_status):
    out = tmp_path / "out"
    env = {API_KEY_ENV: KEY, "SI_TEST_REAL_MODEL": "1", "SELF_INSTRUCT_VERBOSITY": "debug"}
    with LocalServer(quoting(status)) as server:
        args = ["generate", "--backend", "openai", "--endpoint", server.url, "--output", str(out)]
        done = run_cli([*args, "--num-instructions", "4", "--max-attempts", "1"], env)
        assert f"Bearer {KEY}" in server.httpd.authorizations
    assert done.returncode == exit_status, done.stderr
    assert "Traceback" not in done.stderr
    assert "self-instruct generate: error:" in done.stderr and "authorization" in done.stderr
    assert KEY not in done.stdout + done.stderr + output_text(out)
