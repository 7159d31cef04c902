"""What an inference server says about its model's context, and how it counts a prompt's tokens.

Asked once per run, before the first request, so that a seed too long for the model is named up
front rather than failing every round that samples it with an HTTP 400. Every function answers
`None` where the server has no such route or answers something else: the length check is then
skipped, never the run.

- TGI: `GET /info` gives `max_input_tokens` (the prompt's limit) and `max_total_tokens` (prompt
  and generation together); `POST /tokenize` returns the prompt's tokens.
- OpenAI-compatible servers: `GET /v1/models` gives `max_model_len` (vLLM, SGLang) or
  `meta.n_ctx_train` (llama.cpp's server) for the model; `POST /tokenize` returns a `count`
  (vLLM, SGLang) or the `tokens` (llama.cpp's server, which reads the text from `content`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx2


async def fetch_json(
    session: httpx2.AsyncClient, method: str, url: str, body: dict | None = None
) -> object | None:
    """The JSON a route answers with 200, or `None` (no such route, an error, not JSON)."""
    try:
        response = await session.request(method, url, json=body)
        return response.json() if response.status_code == 200 else None
    except (httpx2.HTTPError, ValueError):
        return None


def _count(value: object) -> int | None:
    return value if type(value) is int and value > 0 else None


def server_root(base_url: str) -> str:
    """`http://host:8000/v1` -> `http://host:8000`: where the servers put `/tokenize`."""
    path = urlsplit(base_url).path.rstrip("/")
    return base_url[: -len("/v1")] if path.endswith("/v1") else base_url


async def tgi_room(session: httpx2.AsyncClient, url: str, max_new_tokens: int) -> int | None:
    info = await fetch_json(session, "GET", f"{url}/info")
    if not isinstance(info, dict):
        return None
    limits = [_count(info.get("max_input_tokens"))]
    if total := _count(info.get("max_total_tokens")):
        limits.append(total - max_new_tokens)
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else None


async def tgi_count(session: httpx2.AsyncClient, url: str, text: str) -> int | None:
    tokens = await fetch_json(session, "POST", f"{url}/tokenize", {"inputs": text})
    return len(tokens) if isinstance(tokens, list) else None


async def openai_room(
    session: httpx2.AsyncClient, base_url: str, model: str, max_new_tokens: int
) -> int | None:
    models = await fetch_json(session, "GET", f"{server_root(base_url)}/v1/models")
    entries = models.get("data") if isinstance(models, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return None
    named = [entry for entry in entries if entry.get("id") == model]
    if not named and len(entries) != 1:
        return None
    entry = (named or entries)[0]
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    context = _count(entry.get("max_model_len")) or _count(meta.get("n_ctx_train"))
    return context - max_new_tokens if context else None


async def openai_count(
    session: httpx2.AsyncClient, base_url: str, model: str, text: str
) -> int | None:
    body = {"model": model, "prompt": text, "content": text}
    answer = await fetch_json(session, "POST", f"{server_root(base_url)}/tokenize", body)
    if not isinstance(answer, dict):
        return None
    if (count := _count(answer.get("count"))) is not None:
        return count
    tokens = answer.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None
