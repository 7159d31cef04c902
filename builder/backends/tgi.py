"""Text Generation Inference's native `/generate` API, through `huggingface_hub`.

`AsyncInferenceClient.text_generation` is the maintained client for TGI (the legacy
`text-generation` package pins `huggingface-hub<1.0`). Asking for `details` gives the finish
reason and the generated token count. The prompt's length comes in TGI's `x-prompt-tokens`
response header. `decoder_input_details` would give it too, as the whole list of prompt tokens,
which huggingface_hub parses into one object per token: ~2.5 ms of client CPU per request for the
pipeline's prompts, more than twice what the rest of a request costs. So only an endpoint not yet
seen sending the header is asked for them (its first requests), and one that never sends it (not
TGI's own router) keeps being asked: the count stays exact either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from huggingface_hub import TextGenerationOutputDetails

from .base import Completion, SamplingParams
from .http import HTTPBackend, MalformedResponseError, Slot, to_completion

PROMPT_TOKENS_HEADER = "x-prompt-tokens"


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
        self._header_endpoints: set[str] = set()  # seen sending the prompt token count

    async def _request(self, slot: Slot, prompt: str, params: SamplingParams) -> Completion:
        url = slot.endpoint.url
        output = await slot.client.text_generation(
            prompt,
            model=f"{url}/generate",
            details=True,
            decoder_input_details=url not in self._header_endpoints,
            **generate_parameters(params),
        )
        details = output.details
        if details is None or details.generated_tokens is None:
            raise MalformedResponseError(f"{url}/generate answered without details")
        return to_completion(
            output.generated_text,
            details.finish_reason,
            params,
            prompt_tokens=self._prompt_tokens(slot, details),
            completion_tokens=details.generated_tokens,
        )

    def _prompt_tokens(self, slot: Slot, details: TextGenerationOutputDetails) -> int:
        """From the header when the server sends it, else from the prefill tokens.

        An endpoint that stops sending the header (servers behind one load balancer) is asked for
        the prefill again from its next request on.
        """
        header = slot.headers.get(PROMPT_TOKENS_HEADER)
        if header is None:
            self._header_endpoints.discard(slot.endpoint.url)
            return len(details.prefill or ())
        self._header_endpoints.add(slot.endpoint.url)
        return int(header)
