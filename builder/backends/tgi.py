"""Text Generation Inference's native `/generate` API, through `huggingface_hub`.

`AsyncInferenceClient.text_generation` is the maintained client for TGI (the legacy
`text-generation` package pins `huggingface-hub<1.0`). TGI's router sends both token counts with
every answer, in the `x-prompt-tokens` and `x-generated-tokens` headers, and decides the finish
reason by a fixed rule: the token limit is checked before the end-of-sequence token and the stop
sequences (`StoppingCriteria` in its server). So once an endpoint has been seen sending the
headers, a request asks for the text alone: the `details` (one object per generated token) and
`decoder_input_details` (one per prompt token) that would say the same cost milliseconds of client
CPU per request to parse, more than everything else a request costs. An endpoint not yet seen
sending them (its first wave) or that does not (not TGI's own router) is asked for the details,
and the counts stay exact either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Completion, SamplingParams
from .http import HTTPBackend, MalformedResponseError, Slot, to_completion

PROMPT_TOKENS_HEADER, GENERATED_TOKENS_HEADER = "x-prompt-tokens", "x-generated-tokens"


def generate_parameters(params: SamplingParams) -> dict:
    """SamplingParams -> TGI `GenerateParameters`, leaving out what TGI would reject.

    TGI refuses temperature 0 and top_p outside (0, 1): greedy is `do_sample=False` with neither.
    Its seed only matters when sampling.
    """
    kwargs: dict = {"max_new_tokens": params.max_new_tokens, "stop": list(params.stop) or None}
    if params.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = params.repetition_penalty
    if params.temperature > 0:
        kwargs |= {"do_sample": True, "temperature": params.temperature, "seed": params.seed}
        if 0 < params.top_p < 1:
            kwargs["top_p"] = params.top_p
    return kwargs


class TGIBackend(HTTPBackend):
    """Completions from one or more TGI servers (or anything serving TGI's `/generate`)."""

    name = "tgi"

    def __init__(self, endpoints: Sequence[str], **kwargs) -> None:
        super().__init__(endpoints, **kwargs)
        self._header_endpoints: set[str] = set()  # seen sending both token counts

    async def _request(self, slot: Slot, prompt: str, params: SamplingParams) -> Completion:
        if slot.endpoint.url in self._header_endpoints:
            return await self._text_only(slot, prompt, params)
        return await self._with_details(slot, prompt, params)

    async def _text_only(self, slot: Slot, prompt: str, params: SamplingParams) -> Completion:
        """The text; the counts from the headers; the finish reason by TGI's rule."""
        url = slot.endpoint.url
        text = await slot.client.text_generation(
            prompt, model=f"{url}/generate", **generate_parameters(params)
        )
        counts = _header_counts(slot)
        if counts is None:  # another server behind the same URL: ask it for the details again
            self._header_endpoints.discard(url)
            raise MalformedResponseError(f"{url}/generate stopped sending the token counts")
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
            self._header_endpoints.add(url)
        return to_completion(
            output.generated_text,
            details.finish_reason,
            params,
            prompt_tokens=len(details.prefill or ()),
            completion_tokens=details.generated_tokens,
        )


def _header_counts(slot: Slot) -> tuple[int, int] | None:
    """(prompt tokens, generated tokens) from the latest answer's headers, if it sent both."""
    try:
        return int(slot.headers[PROMPT_TOKENS_HEADER]), int(slot.headers[GENERATED_TOKENS_HEADER])
    except (KeyError, ValueError):
        return None
