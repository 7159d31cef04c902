"""Text Generation Inference's native `/generate` API, through `huggingface_hub`.

`AsyncInferenceClient.text_generation` is the maintained client for TGI (the legacy
`text-generation` package pins `huggingface-hub<1.0`). TGI's router sends both token counts with
every answer, in the `x-prompt-tokens` and `x-generated-tokens` headers, and decides the finish
reason by a fixed rule: the token limit is checked before the end-of-sequence token and the stop
sequences (`StoppingCriteria` in its server). So a request asks for the text alone: the
`details` (one object per generated token) and `decoder_input_details` (one per prompt token)
that would say the same cost milliseconds of client CPU per request to parse, more than
everything else a request costs. A server that answers without the headers (not TGI's own
router) has that request sent again with the details, and is asked for them from then on (until
it sends the headers again): the counts stay exact either way, at the cost of one wasted
generation per request of its first wave.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx2

from self_instruct.backends.base import ChatPrompt, Completion, Prompt, SamplingParams
from self_instruct.backends.endpoints import Slot
from self_instruct.backends.errors import MalformedResponseError, answer_parsing
from self_instruct.backends.fields import to_completion
from self_instruct.backends.http import HTTPBackend
from self_instruct.backends.limits import tgi_count, tgi_room
from self_instruct.utils.redaction import redact_url

if TYPE_CHECKING:
    from self_instruct.schemas import ResponseSchema

logger = logging.getLogger(__name__)

PROMPT_TOKENS_HEADER, GENERATED_TOKENS_HEADER = "x-prompt-tokens", "x-generated-tokens"


def generate_parameters(params: SamplingParams) -> dict:
    """SamplingParams -> TGI `GenerateParameters`, leaving out what TGI would reject.

    TGI refuses temperature 0 and top_p outside (0, 1): greedy is `do_sample=False` with neither.
    Its seed only matters when sampling. A schema goes in TGI's `grammar` (type "json").
    """
    kwargs: dict = {"max_new_tokens": params.max_new_tokens, "stop": list(params.stop) or None}
    if params.schema is not None:
        kwargs["grammar"] = json_grammar(params.schema)
    if params.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = params.repetition_penalty
    if params.temperature > 0:
        kwargs |= {"do_sample": True, "temperature": params.temperature, "seed": params.seed}
        if 0 < params.top_p < 1:
            kwargs["top_p"] = params.top_p
    return kwargs


def json_grammar(schema: ResponseSchema) -> dict:
    """TGI's `GrammarType` of type "json": its `grammar` on `/generate`, its `response_format`
    on `/v1/chat/completions`."""
    return {"type": "json", "value": schema.schema}


class TGIBackend(HTTPBackend):
    """Completions from one or more TGI servers (or anything serving TGI's `/generate`); a
    `ChatPrompt` goes to TGI's `/v1/chat/completions`, which applies the model's chat template."""

    name = "tgi"

    def __init__(self, endpoints: Sequence[str], **kwargs) -> None:
        super().__init__(endpoints, **kwargs)
        self._without_headers: set[str] = set()  # endpoints seen answering without the counts

    async def _room(self, session: httpx2.AsyncClient, url: str, max_new_tokens: int) -> int | None:
        return await tgi_room(session, url, max_new_tokens)

    async def _count(self, session: httpx2.AsyncClient, url: str, text: str) -> int | None:
        return await tgi_count(session, url, text)

    def response_format(self, schema: ResponseSchema) -> dict:
        return json_grammar(schema)

    async def _request(self, slot: Slot, prompt: Prompt, params: SamplingParams) -> Completion:
        if isinstance(prompt, ChatPrompt):
            return await self._chat_completion(slot, prompt, params)
        with answer_parsing(slot.endpoint.url):
            if slot.endpoint.url not in self._without_headers:
                completion = await self._text_only(slot, prompt, params)
                if completion is not None:
                    return completion
            return await self._with_details(slot, prompt, params)

    async def _text_only(
        self, slot: Slot, prompt: str, params: SamplingParams
    ) -> Completion | None:
        """The text, the counts from the headers, the finish reason by TGI's rule; `None` if the
        server sent no counts."""
        url = slot.endpoint.url
        text = await slot.client.text_generation(
            prompt, model=f"{url}/generate", **generate_parameters(params)
        )
        counts = _header_counts(slot)
        if counts is None:
            if url not in self._without_headers:
                logger.warning(
                    "%s sends no token count headers: asking it for details", redact_url(url)
                )
            self._without_headers.add(url)
            return None
        prompt_tokens, generated = counts
        reason = "length" if generated >= params.max_new_tokens else "stop"
        return to_completion(text, reason, params, prompt_tokens, generated)

    async def _with_details(self, slot: Slot, prompt: str, params: SamplingParams) -> Completion:
        url = slot.endpoint.url
        output = await slot.client.text_generation(
            prompt,
            model=f"{url}/generate",
            details=True,
            decoder_input_details=True,
            **generate_parameters(params),
        )
        details = output.details
        if details is None or details.generated_tokens is None:
            raise MalformedResponseError(f"{url}/generate answered without details")
        if _header_counts(slot) is not None:
            self._without_headers.discard(url)
        return to_completion(
            output.generated_text,
            details.finish_reason,
            params,
            prompt_tokens=len(details.prefill) if details.prefill else None,  # not sent: unknown
            completion_tokens=details.generated_tokens,
        )


def _header_counts(slot: Slot) -> tuple[int, int] | None:
    """(prompt tokens, generated tokens) from the latest answer's headers, if it sent both."""
    try:
        return int(slot.headers[PROMPT_TOKENS_HEADER]), int(slot.headers[GENERATED_TOKENS_HEADER])
    except (KeyError, ValueError):
        return None
