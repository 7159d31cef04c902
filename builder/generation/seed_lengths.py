"""Seeds too long for the model's context, refused before the first request.

Every instruction prompt holds `num_prompt_instructions` instructions and leaves room for
`max_new_tokens` new tokens. A seed whose instruction takes more than its share of that room can
overflow any prompt that samples it: the server answers HTTP 400 at the same round on every
resume, or the model silently loses the prompt's start. So each seed's tokens are counted up
front, with the model's own tokenizer (transformers) or the server's (TGI `/tokenize`, vLLM and
llama.cpp `/tokenize`), against the context the model or server reports. Where neither can be
known the check is skipped, and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from self_instruct.backends.base import Backend, ChatPrompt
from self_instruct.config import PipelineConfig
from self_instruct.errors import ConfigError
from self_instruct.prompting.modes import prompting_mode
from self_instruct.prompting.prompts import load_templates
from self_instruct.prompting.seeds import SeedFileError, SeedTask

logger = logging.getLogger(__name__)

NAMED = 5  # seeds named in the message; the count says how many more


def check_seed_lengths(seeds: Sequence[SeedTask], backend: Backend, config: PipelineConfig) -> None:
    """Raise `SeedFileError` naming every seed whose instruction can overflow a prompt."""
    if config.classification_only:
        seeds = [seed for seed in seeds if seed.is_classification]
    room = backend.prompt_room(config.max_new_tokens)
    counts = None if room is None else backend.count_tokens(_prompts(seeds, config))
    if counts is None:
        logger.info("The model's context or token counts are unknown: seed lengths not checked.")
        return
    header, *with_seed = counts
    share = (room - header) // config.num_prompt_instructions
    if share <= 0:
        raise ConfigError(
            f"--max-new-tokens {config.max_new_tokens} leaves no room for a prompt of "
            f"{config.num_prompt_instructions} instructions in the model's context "
            f"({max(room, 0)} tokens left): lower it."
        )
    lengths = [(seed, n - header) for seed, n in zip(seeds, with_seed, strict=True)]
    too_long = [(seed, tokens) for seed, tokens in lengths if tokens > share]
    if too_long:
        raise SeedFileError(_message(config, too_long, share, room))


def _prompts(seeds: Sequence[SeedTask], config: PipelineConfig) -> list[str]:
    """The prompt's fixed part alone, then a prompt with each seed alone (a chat prompt by its
    messages' text: the chat template adds the same few tokens to each)."""
    mode = prompting_mode(config, load_templates(config.prompt_templates))
    prompts = [
        mode.instruction_prompt([]),
        *(mode.instruction_prompt([s.instruction]) for s in seeds),
    ]
    return [p.text() if isinstance(p, ChatPrompt) else p for p in prompts]


def _message(
    config: PipelineConfig, too_long: list[tuple[SeedTask, int]], share: int, room: int
) -> str:
    named = ", ".join(f"{seed.id!r} ({tokens} tokens)" for seed, tokens in too_long[:NAMED])
    more = f" and {len(too_long) - NAMED} more" if len(too_long) > NAMED else ""
    return (
        f"{config.seeds}: {len(too_long)} seed task(s) too long for the model: {named}{more}. "
        f"With --max-new-tokens {config.max_new_tokens}, the model's context leaves {room} "
        f"tokens for a prompt of {config.num_prompt_instructions} instructions: {share} each. "
        "Shorten or remove these seeds, or lower --num-prompt-instructions or --max-new-tokens."
    )
