"""Text Generation Inference's native API over a real model, for tests and benchmarks.

`ModelTGIApp` answers TGI's `/generate`, `/tokenize`, `/info` and `/health` with a real model (a
`TransformersBackend`); like TGI, a prompt over `max_input_tokens` gets a 422. Given a
`check_request` (the tests' one checks TGI's published OpenAPI schema, reference data that the
package does not ship), a request our client builds wrongly gets TGI's own 422. Like TGI's
router, `/generate` sends the token counts in `x-prompt-tokens` and `x-generated-tokens` headers
(the schema has no place for headers). Serve it with `local_server.LocalServer`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from self_instruct.backends.base import Backend, SamplingParams
from self_instruct.schemas import ResponseSchema
from self_instruct.testing.local_server import Reply, tgi_error


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
        self._lock = threading.Lock()  # one generation at a time
        self.stopping = threading.Event()  # set by LocalServer on exit: generate no more

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
            if self.stopping.is_set():
                return tgi_error(503, "The server is shutting down", "overloaded")
            [completion] = self.backend.generate([request["inputs"]], params)
        body = self._response(request["inputs"], completion, parameters)
        headers = tgi_headers(completion.prompt_tokens, completion.completion_tokens)
        return Reply(200, body, headers=headers)

    def drain(self) -> None:
        """Wait for the generation in progress (LocalServer's exit): a client that stopped, as a
        finished run does with requests it no longer needs, leaves it running in a handler
        thread, and a process that exits under it aborts in torch's native code."""
        with self._lock:
            pass

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
