"""A server with no model, speaking TGI's and OpenAI's protocols, for control-flow tests.

`ScriptedApp` echoes each prompt, or answers what its `reply` makes of it (TGI `/generate`,
OpenAI `/v1/completions` and `/v1/chat/completions`), after a fixed latency with a fixed
capacity, and injects faults (503, a hang past the client's timeout, a dropped connection,
malformed JSON, a 4xx, a 429 with `Retry-After`, an error page that quotes the request's headers)
on a schedule keyed by prompt and attempt, so that what happens does not depend on arrival order.
Serve it with `local_server.LocalServer`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from self_instruct.testing.local_server import Reply, tgi_error
from self_instruct.testing.tgi_server import tgi_details, tgi_headers

FAULTS = ("503", "hang", "drop", "badjson", "400", "429", "quote")


@dataclass
class ScriptedApp:
    """Echo server with a fixed latency and capacity, and faults by (prompt, attempt)."""

    latency: float = 0.0  # seconds each request holds a slot
    capacity: int = 1024  # requests served at once; the rest queue
    faults: Callable[[str, int], str | None] = lambda prompt, attempt: None
    hang: float = 10.0  # seconds a "hang" fault waits (past the client's timeout)
    # A "429" fault's Retry-After header (seconds or an HTTP date), made when it is answered.
    retry_after: Callable[[], str] = lambda: "1"
    reply: Callable[[str], str] = lambda prompt: f"echo {prompt}"  # the text answered
    attempts: Counter = field(default_factory=Counter)  # prompt -> requests seen
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # prompt -> monotonic times
    outcomes: Counter = field(default_factory=Counter)  # "ok" or fault name -> count
    finished: list[str] = field(default_factory=list)  # prompts answered, in answer order
    peak_in_flight: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._slots = threading.Semaphore(self.capacity)
        self._lock = threading.Lock()
        self._in_flight = 0

    def handle(self, method: str, path: str, body) -> Reply:
        routes = {
            "/generate": tgi_answer,
            "/v1/completions": _openai,
            "/v1/chat/completions": _chat,
        }
        if (method, path) == ("GET", "/health"):  # what `generate` probes before a run
            return Reply(200, b"")
        if (method, path) == ("GET", "/v1/models"):
            return Reply(200, {"object": "list", "data": [{"id": "echo", "object": "model"}]})
        if method != "POST" or path not in routes:
            return tgi_error(404, f"no route {method} {path}", "validation")
        prompt = body["messages"][-1]["content"] if path.endswith("chat/completions") else None
        prompt = prompt or body.get("inputs") or body.get("prompt")
        with self._lock:
            attempt = self.attempts[prompt]
            self.attempts[prompt] += 1
            self.arrivals.setdefault(prompt, []).append(time.monotonic())
        fault = self.faults(prompt, attempt)
        with self._lock:
            self.outcomes[fault or "ok"] += 1
        if fault:
            return self._fault(fault)
        with self._slots:
            self._enter()
            self.stopping.wait(self.latency)
            self._leave(prompt)
        return routes[path](self.reply(prompt), prompt, body)

    def _fault(self, fault: str) -> Reply:
        if fault == "hang":
            self.stopping.wait(self.hang)
        return {
            "503": tgi_error(503, "Model is overloaded", "overloaded"),
            "hang": Reply(200, b"{}"),
            "drop": Reply(drop=True),
            "badjson": Reply(200, b'{"generated_text": "trunc'),
            "400": tgi_error(400, "`max_new_tokens` must be <= 4096", "validation"),
            "429": Reply(
                429,
                {"error": "Rate limit reached", "error_type": "rate_limit"},
                headers={"Retry-After": self.retry_after()},
            ),
            # A gateway's error page that quotes the request back, its Authorization included.
            "quote": Reply(503, {"error": "upstream unavailable"}, quote_request=True),
        }[fault]

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def _leave(self, prompt: str) -> None:
        with self._lock:
            self._in_flight -= 1
            self.finished.append(prompt)


def _counts(text: str, prompt: str) -> tuple[int, int]:
    return len(prompt.split()), len(text.split())


def tgi_answer(text: str, prompt: str, request: dict) -> Reply:
    """Like TGI: details only when asked, the prompt's tokens only when asked too, the token counts
    in headers always, and the finish reason by TGI's rule (the token limit is checked first)."""
    prompt_tokens, generated = _counts(text, prompt)
    parameters = request.get("parameters") or {}
    body: dict = {"generated_text": text}
    if parameters.get("details"):
        words = prompt.split() if parameters.get("decoder_input_details") else []
        body["details"] = tgi_details(
            parameters, generated, list(enumerate(words)), list(enumerate(text.split()))
        )
    return Reply(200, body, headers=tgi_headers(prompt_tokens, generated))


def _openai(text: str, prompt: str, request: dict) -> Reply:
    prompt_tokens, generated = _counts(text, prompt)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": generated}
    choice = {"index": 0, "text": text, "finish_reason": "stop"}
    return Reply(200, {"object": "text_completion", "choices": [choice], "usage": usage})


def _chat(text: str, prompt: str, request: dict) -> Reply:
    response = _openai(text, prompt, request).body
    choice = response["choices"][0]
    choice["message"] = {"role": "assistant", "content": choice.pop("text")}
    return Reply(200, {**response, "object": "chat.completion"})
