"""Schema-constrained decoding for the transformers backend, with llguidance.

At every step `generate` asks a `LogitsProcessor` for the next-token scores; this one sets to
-inf every token that cannot continue an answer fitting the JSON schema, and once the answer is
complete, every token but end-of-sequence. llguidance (one of vLLM's structured-output backends,
and an optional one of llama.cpp) was chosen over xgrammar and outlines because it is one wheel
without dependencies that runs on the CPU: xgrammar 0.2.9 pulls in triton (hundreds of MB) and a
TVM runtime, outlines 1.3.3 nine more packages.

`generate` calls the processor before its temperature and top-p warpers, so sampling only ever
chooses among allowed tokens.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from transformers import LogitsProcessor

from self_instruct.schemas import ResponseSchema

# Compact JSON with the usual separators: the model's tokens for ", " and ": " are common ones,
# and whitespace between items would only spend tokens.
_JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@functools.cache
def _grammar(schema: ResponseSchema) -> str:
    import llguidance

    return llguidance.LLMatcher.grammar_from_json_schema(schema.text, overrides=_JSON_LAYOUT)


class SchemaLogitsProcessor(LogitsProcessor):
    """Masks each row of a batch to the tokens its answer may continue with.

    One matcher per row follows the tokens generated so far (the prompt is not parsed: the
    answer starts at the first generated token). A row whose answer is complete may only end.
    """

    def __init__(self, ll_tokenizer, schema: ResponseSchema, rows: int, eos_token_id: int):
        import llguidance

        grammar = _grammar(schema)
        self.matchers = [llguidance.LLMatcher(ll_tokenizer, grammar) for _ in range(rows)]
        self.eos_token_id = eos_token_id
        self._prompt_length: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._prompt_length is None:
            self._prompt_length = input_ids.shape[1]
        else:  # the token chosen at the previous step
            for matcher, token in zip(self.matchers, input_ids[:, -1].tolist(), strict=True):
                if not matcher.is_stopped():
                    matcher.consume_token(token)
        allowed = torch.stack([self._allowed(m, scores.shape[1]) for m in self.matchers])
        return scores.masked_fill(~allowed.to(scores.device), float("-inf"))

    def _allowed(self, matcher, vocab_size: int) -> torch.Tensor:
        if matcher.is_stopped():  # complete (or, never expected, in error): end the answer
            only_eos = torch.zeros(vocab_size, dtype=torch.bool)
            only_eos[self.eos_token_id] = True
            return only_eos
        bits = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)
        mask = np.unpackbits(bits, bitorder="little")[:vocab_size].astype(bool)
        if mask.shape[0] < vocab_size:  # ids past the tokenizer's (padding rows of the weights)
            mask = np.pad(mask, (0, vocab_size - mask.shape[0]))
        return torch.from_numpy(mask)


def ll_tokenizer(hf_tokenizer, vocab_size: int):
    """llguidance's view of the model's tokenizer (about a second to build: keep it)."""
    import llguidance.hf

    return llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size)
