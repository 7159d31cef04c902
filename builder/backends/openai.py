"""OpenAI-compatible servers (vLLM, SGLang, llama.cpp, TGI), through `huggingface_hub`.

Chat completions go through `AsyncInferenceClient.chat_completion` in its `base_url` mode. The
client has no method for the plain `/v1/completions` the paper's prompts need (a raw prompt to
continue, no chat template), so that path posts the OpenAI request itself, on the same session and
with the same error handling (`hf_raise_for_status`) as the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlparse

import httpx2
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

from self_instruct.backends.base import ChatPrompt, Completion, Message, Prompt, SamplingParams
from self_instruct.backends.endpoints import Slot
from self_instruct.backends.errors import answer_parsing
from self_instruct.backends.fields import sampling_fields, to_completion
from self_instruct.backends.http import HTTPBackend
from self_instruct.backends.limits import openai_count, openai_room

__all__ = ["OpenAIBackend", "completions_url", "sampling_fields"]


def completions_url(base_url: str) -> str:
    """`http://host:8000` and `http://host:8000/v1` both mean `http://host:8000/v1/completions`."""
    path = urlparse(base_url).path.rstrip("/")
    return f"{base_url}/completions" if path.endswith("/v1") else f"{base_url}/v1/completions"


class OpenAIBackend(HTTPBackend):
    """Completions from OpenAI-compatible servers. A `ChatPrompt` goes to `/v1/chat/completions`
    as it is; with `chat=True` (the judge's `--judge-chat`) a text prompt goes there too, as one
    user turn."""

    name = "openai"

    def __init__(self, endpoints: Sequence[str], *, model: str, chat: bool = False, **kwargs):
        super().__init__(endpoints, model=model, **kwargs)
        self.chat = chat

    async def _room(self, session: httpx2.AsyncClient, url: str, max_new_tokens: int) -> int | None:
        return await openai_room(session, url, self.model, max_new_tokens)

    async def _count(self, session: httpx2.AsyncClient, url: str, text: str) -> int | None:
        return await openai_count(session, url, self.model, text)

    async def _request(self, slot: Slot, prompt: Prompt, params: SamplingParams) -> Completion:
        if isinstance(prompt, str) and self.chat:
            prompt = ChatPrompt((Message("user", prompt),))
        if isinstance(prompt, ChatPrompt):
            return await self._chat_completion(slot, prompt, params)
        return await self._text_completion(slot, prompt, params)

    async def _text_completion(self, slot: Slot, prompt: str, params: SamplingParams) -> Completion:
        body = {"model": self.model, "prompt": prompt, **sampling_fields(params)}
        if params.schema is not None:
            body["response_format"] = self.response_format(params.schema)
        headers = build_hf_headers(token=self.api_key, headers=slot.client.headers)  # as the client
        response = await slot.session.post(
            completions_url(slot.endpoint.url), json=body, headers=headers
        )
        hf_raise_for_status(response)
        with answer_parsing(slot.endpoint.url):
            data = response.json()
            choice, usage = data["choices"][0], data.get("usage") or {}  # usage is optional
            return to_completion(
                choice["text"],
                choice["finish_reason"],
                params,
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
            )
