"""Text Generation Inference's native `/generate` API, through `huggingface_hub`.

`AsyncInferenceClient.text_generation` is the maintained client for TGI (the legacy
`text-generation` package pins `huggingface-hub<1.0`). Asking for `details` gives the finish
reason and the generated token count; `decoder_input_details` adds the prompt tokens, the only way
the native API tells how long a prompt was.
"""

from __future__ import annotations

from .base import Completion, SamplingParams
from .http import Endpoint, HTTPBackend, MalformedResponseError, to_completion


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

    async def _request(self, endpoint: Endpoint, prompt: str, params: SamplingParams) -> Completion:
        output = await endpoint.client.text_generation(
            prompt,
            model=f"{endpoint.url}/generate",
            details=True,
            decoder_input_details=True,
            **generate_parameters(params),
        )
        details = output.details
        if details is None or details.generated_tokens is None:
            raise MalformedResponseError(f"{endpoint.url}/generate answered without details")
        return to_completion(
            output.generated_text,
            details.finish_reason,
            params,
            prompt_tokens=len(details.prefill or ()),
            completion_tokens=details.generated_tokens,
        )
