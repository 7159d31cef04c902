"""What the server protocols' requests carry and what their answers become.

The OpenAI-compatible fields (`sampling_fields`, `openai_response_format`) are sent by the
`openai` backend on both endpoints and by every backend on `/v1/chat/completions`;
`to_completion` turns any protocol's answer into a `Completion`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from self_instruct.backends.base import Completion, SamplingParams, cut_at_stop
from self_instruct.backends.errors import MalformedResponseError

if TYPE_CHECKING:
    from self_instruct.schemas import ResponseSchema


def to_completion(
    text: str | None,
    finish_reason: str | None,
    params: SamplingParams,
    prompt_tokens: int | None,
    completion_tokens: int | None,
) -> Completion:
    """Build a `Completion` from any protocol's fields, cutting the text at the first stop.

    Servers differ in whether they include the matched stop sequence (TGI does, OpenAI servers
    do not), so the cut happens here; whatever ended generation but the token limit is "stop".
    A count the server did not give (`None`) stays unknown.
    """
    if not isinstance(text, str) or not isinstance(finish_reason, str):
        raise MalformedResponseError(
            f"response without a text or finish reason string: {text!r:.100}, {finish_reason!r:.40}"
        )
    counts = (prompt_tokens, completion_tokens)
    if not all(count is None or (type(count) is int and count >= 0) for count in counts):
        raise MalformedResponseError(f"token counts that are not counts: {counts!r:.100}")
    text, stopped = cut_at_stop(text, params.stop)
    reason = "length" if finish_reason == "length" and not stopped else "stop"
    return Completion(text, reason, *counts)


def sampling_fields(params: SamplingParams) -> dict:
    """SamplingParams -> the OpenAI request fields (temperature 0 is greedy there)."""
    fields = {
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": list(params.stop) or None,
        "presence_penalty": params.presence_penalty or None,
        "seed": params.seed,
    }
    return {key: value for key, value in fields.items() if value is not None}


def openai_response_format(schema: ResponseSchema) -> dict:
    """OpenAI's structured-output field, which vLLM and SGLang take on both endpoints, and
    llama.cpp's llama-server on chat completions (llama-cpp-python's server on neither).

    Without `strict`: servers differ in the keywords their strict mode allows, and every answer
    is validated against the schema when it is parsed anyway.
    """
    named = {"name": schema.name, "schema": schema.schema}
    return {"type": "json_schema", "json_schema": named}
