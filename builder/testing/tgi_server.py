"""HTTP servers on 127.0.0.1 that speak what the server backends call, for tests and benchmarks.

- `ModelTGIApp`: Text Generation Inference's `/generate`, `/tokenize`, `/info` and `/health`,
  answered by a real model (a `TransformersBackend`); like TGI, a prompt over `max_input_tokens`
  gets a 422. Given a `check_request` (the tests' one checks TGI's published OpenAPI schema,
  reference data that the package does not ship), a request our client builds wrongly gets
  TGI's own 422. Like TGI's router, `/generate` sends the token counts in
  `x-prompt-tokens` and `x-generated-tokens` headers (the schema has no place for headers).
- `ScriptedApp`: no model. It echoes each prompt, or answers what its `reply` makes of it (TGI
  `/generate`, OpenAI `/v1/completions` and `/v1/chat/completions`), after a fixed latency with
  a fixed capacity, and injects faults (503, a hang past the client's timeout, a dropped
  connection, malformed JSON, a 4xx) on a schedule keyed by prompt and attempt, so that what
  happens does not depend on arrival order.

Run one with `with LocalServer(app) as server: ... server.url ...`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..backends.base import Backend, SamplingParams
from ..schemas import ResponseSchema


@dataclass
class Reply:
    """What to answer: JSON (or raw bytes) with a status and headers, or nothing at all (`drop`).

    `drip` sends the body one byte at a time, that many seconds apart: every read is quick, the
    answer never ends (until the server stops).
    """

    status: int = 200
    body: object = None
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0


def tgi_error(status: int, message: str, error_type: str) -> Reply:
    """TGI's `ErrorResponse`."""
    return Reply(status, {"error": message, "error_type": error_type})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real servers
    disable_nagle_algorithm = True  # real servers answer at once; Nagle + delayed ACK adds ~40 ms

    def do_GET(self) -> None:
        self._answer(self.server.app.handle("GET", self.path, None))

    def do_POST(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization"))
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as error:
            self._answer(tgi_error(400, f"invalid JSON: {error}", "validation"))
            return
        self._answer(self.server.app.handle("POST", self.path, body))

    def _answer(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True  # the socket closes with no response at all
            return
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the client gave up (a "hang" fault)
            if not reply.drip:
                self.wfile.write(body)
            stopping = getattr(self.server.app, "stopping", threading.Event())
            for i in range(len(body) if reply.drip else 0):
                self.wfile.write(body[i : i + 1])
                if stopping.wait(reply.drip):
                    return

    def log_message(self, format, *args) -> None:  # quiet test output
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 64+ clients connect at once; the default backlog of 5 resets them
    authorizations: list[str | None]  # the Authorization header of each POST, in arrival order


class LocalServer:
    """Serve an app (`handle(method, path, body) -> Reply`) on a free loopback port."""

    def __init__(self, app) -> None:
        self.app = app
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.app = app
        self.httpd.authorizations = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LocalServer:
        serve = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        serve.start()
        return self

    def __exit__(self, *exc) -> None:
        getattr(self.app, "stopping", threading.Event()).set()  # release hanging handlers
        self.httpd.shutdown()
        self.httpd.server_close()


class ModelTGIApp:
    """TGI's native API over a real model; one generation at a time, like a batch-size-1 server."""

    def __init__(
        self,
        backend: Backend,
        model_id: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
        check_request: Callable[[dict], str | None] | None = None,
    ):
        self.backend = backend
        self.model_id = model_id
        self.check_request = check_request  # a request -> what is wrong with it, or None
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, body) -> Reply:
        if (method, path) == ("GET", "/health"):
            return Reply(200, b"")
        if (method, path) == ("GET", "/info"):
            return Reply(200, self.info())
        if (method, path) == ("POST", "/generate"):
            return self.generate(body)
        if (method, path) == ("POST", "/tokenize"):
            return Reply(200, self.tokenize(body["inputs"]))
        return tgi_error(404, f"no route {method} {path}", "validation")

    def tokenize(self, text: str) -> list[dict]:
        """TGI's `TokenizeResponse`: one `SimpleToken` per token of the prompt."""
        encoding = self.backend.tokenizer(text, return_offsets_mapping=True)
        pairs = zip(encoding.input_ids, encoding.offset_mapping, strict=True)
        return [
            {"id": i, "text": text[start:stop], "start": start, "stop": stop}
            for i, (start, stop) in pairs
        ]

    def info(self) -> dict:
        return {
            "model_id": self.model_id,
            "max_concurrent_requests": 1,
            "max_best_of": 1,
            "max_stop_sequences": 4,
            "max_input_tokens": 2048,
            "max_total_tokens": 4096,
            "validation_workers": 1,
            "max_client_batch_size": 1,
            "router": "self_instruct.testing.tgi_server",
            "version": "0.0.0-test",
        }

    def generate(self, request: dict) -> Reply:
        if self.check_request is not None and (wrong := self.check_request(request)):
            return tgi_error(422, f"Input validation error: {wrong}", "validation")
        parameters = request.get("parameters") or {}
        problem = _invalid_parameters(parameters)
        if problem:
            return tgi_error(422, f"Input validation error: {problem}", "validation")
        params = _sampling_params(parameters)
        limit = self.info()["max_input_tokens"]
        counts = self.backend.count_tokens([request["inputs"]])  # None: a scripted model
        if counts is not None and counts[0] > limit:
            return tgi_error(
                422,
                f"Input validation error: `inputs` must have less than {limit} tokens.",
                "validation",
            )
        with self._lock:
            [completion] = self.backend.generate([request["inputs"]], params)
        body = self._response(request["inputs"], completion, parameters)
        headers = tgi_headers(completion.prompt_tokens, completion.completion_tokens)
        return Reply(200, body, headers=headers)

    def _response(self, prompt: str, completion, parameters: dict) -> dict:
        """TGI's `GenerateResponse`, details only when asked; logprobs are not computed here,
        which TGI's schema allows."""
        if not parameters.get("details"):
            return {"generated_text": completion.text}
        tokenizer = self.backend.tokenizer

        def tokens(ids: list[int]) -> list[tuple[int, str]]:
            return [(i, tokenizer.decode([i])) for i in ids]

        generated = tokens(tokenizer(completion.text, add_special_tokens=False).input_ids)
        prefill = (
            tokens(tokenizer(prompt).input_ids) if parameters.get("decoder_input_details") else []
        )
        details = tgi_details(parameters, completion.completion_tokens, prefill, generated)
        return {"generated_text": completion.text, "details": details}


def tgi_details(
    parameters: dict,
    generated_tokens: int,
    prefill: list[tuple[int, str]],
    tokens: list[tuple[int, str]],
) -> dict:
    """TGI's `Details` from (id, text) tokens; the finish reason by TGI's rule: the token limit
    is checked before the end-of-sequence token."""
    limit = parameters.get("max_new_tokens") or 20
    return {
        "finish_reason": "length" if generated_tokens >= limit else "eos_token",
        "generated_tokens": generated_tokens,
        "prefill": [{"id": i, "text": text, "logprob": None} for i, text in prefill],
        "tokens": [
            {"id": i, "text": text, "logprob": None, "special": False} for i, text in tokens
        ],
        "seed": parameters.get("seed"),
    }


def tgi_headers(prompt_tokens: int, generated_tokens: int) -> dict[str, str]:
    """The token counts TGI's router sends with every `/generate` answer (`server.rs`)."""
    return {"x-prompt-tokens": str(prompt_tokens), "x-generated-tokens": str(generated_tokens)}


def _invalid_parameters(parameters: dict) -> str | None:
    """The checks of TGI's router (`validation.rs`) that our backend must not trip."""
    if parameters.get("temperature") is not None and parameters["temperature"] <= 0:
        return "`temperature` must be strictly positive"
    if parameters.get("top_p") is not None and not 0 < parameters["top_p"] < 1:
        return "`top_p` must be > 0.0 and < 1.0"
    if parameters.get("max_new_tokens") is not None and parameters["max_new_tokens"] <= 0:
        return "`max_new_tokens` must be strictly positive"
    if len(parameters.get("stop") or []) > 4:
        return "`stop` supports up to 4 stop sequences"
    return None


def _sampling_params(parameters: dict) -> SamplingParams:
    sample = bool(parameters.get("do_sample"))
    return SamplingParams(
        max_new_tokens=parameters.get("max_new_tokens") or 20,
        temperature=(parameters.get("temperature") or 1.0) if sample else 0.0,
        top_p=parameters.get("top_p") or 1.0,
        stop=tuple(parameters.get("stop") or ()),
        repetition_penalty=parameters.get("repetition_penalty") or 1.0,
        seed=parameters.get("seed"),
        schema=_json_grammar(parameters.get("grammar")),
    )


def _json_grammar(grammar: dict | None) -> ResponseSchema | None:
    """TGI's `{"type": "json", "value": schema}`, applied while decoding as TGI does."""
    if not grammar or grammar.get("type") != "json":
        return None
    return ResponseSchema("grammar", json.dumps(grammar["value"]))


FAULTS = ("503", "hang", "drop", "badjson", "400")


@dataclass
class ScriptedApp:
    """Echo server with a fixed latency and capacity, and faults by (prompt, attempt)."""

    latency: float = 0.0  # seconds each request holds a slot
    capacity: int = 1024  # requests served at once; the rest queue
    faults: Callable[[str, int], str | None] = lambda prompt, attempt: None
    hang: float = 10.0  # seconds a "hang" fault waits (past the client's timeout)
    reply: Callable[[str], str] = lambda prompt: f"echo {prompt}"  # the text answered
    attempts: Counter = field(default_factory=Counter)  # prompt -> requests seen
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
