"""A scripted, deterministic, instant stand-in for a language model, for control-flow tests.

It recognises the pipeline's four prompt kinds and answers each from a hash of (prompt, seed):
new numbered instructions (some of them filter bait: too short, blacklisted, copies of the
prompt's own items), yes/no classification answers, and instances in the paper's formats. Real
models are tested elsewhere; this one makes the loop's bookkeeping testable in milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Sequence

from self_instruct.backends.base import Backend, Completion, SamplingParams, cut_at_stop
from self_instruct.prompting.prompts import load_templates

TEMPLATES = load_templates()

VERBS = ("Describe", "Explain", "List", "Compare", "Summarize", "Suggest", "Rewrite", "Classify")
TOPICS = (
    "renewable energy",
    "medieval castles",
    "team sports",
    "healthy breakfasts",
    "ocean tides",
    "job interviews",
    "ancient Rome",
    "personal budgets",
    "volcanoes",
    "chess openings",
    "coral reefs",
    "city parks",
)
ANGLES = ("for a child", "in three sentences", "with one example", "for a beginner", "briefly")


OUTPUT_FIRST_TEXT = "Class label: Yes\nInput: It is sunny.\nClass label: No\nInput: It rains.\n"


def input_first_text(rng: random.Random) -> str:
    """One to three "Example k / Input / Output" instances (also the simulated server's)."""
    n = rng.randint(1, 3)
    return "".join(
        f"Example {k}\nInput: case {k} of {rng.choice(TOPICS)}\nOutput: answer {k}\n"
        for k in range(1, n + 1)
    )


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def generate(self, prompts_: Sequence[str], params: SamplingParams) -> list[Completion]:
        self.calls.append(list(prompts_))
        out = []
        for prompt in prompts_:  # one request at a time, reported as a server backend does
            self._report("started")
            out.append(self._complete(prompt, params))
            self._report("finished")
        self.usage.add(out, 0.0)
        return out

    def _complete(self, prompt: str, params: SamplingParams) -> Completion:
        digest = hashlib.sha256(f"{params.seed}|{prompt}".encode()).digest()
        rng = random.Random(digest)
        if prompt.startswith(TEMPLATES.classification_instruction_header) or prompt.startswith(
            TEMPLATES.instruction_header
        ):
            text = self._instructions(prompt, rng)
        elif prompt.startswith(TEMPLATES.classification_prefix):
            text = rng.choice((" Yes", " No", " No"))
        elif prompt.startswith(TEMPLATES.output_first_prefix):
            text = OUTPUT_FIRST_TEXT
        else:
            text = input_first_text(rng)
        text, _ = cut_at_stop(text, params.stop)
        return Completion(text, "stop", prompt_tokens=len(prompt.split()), completion_tokens=9)

    @staticmethod
    def _instructions(prompt: str, rng: random.Random) -> str:
        shown = [line.split(". ", 1)[1] for line in prompt.splitlines()[1:] if ". " in line]
        items = [
            f"{rng.choice(VERBS)} {rng.choice(TOPICS)} {rng.choice(ANGLES)} "
            f"using idea number {rng.randint(1, 10**6)}",
            "Too short",
            "Draw a picture of a cat and describe its colours",
            rng.choice(shown),
            f"{rng.choice(VERBS)} {rng.choice(TOPICS)} {rng.choice(ANGLES)}",
        ]
        return " " + "".join(f"{item}\n{n}. " for n, item in enumerate(items, 10)).rstrip(
            " .0123456789"
        )


class StreamingScriptedBackend(ScriptedBackend):
    """The same answers, as a server gives them: each request on its own, `window` at once,
    after a random latency (of a generator of its own, so arrival order varies with `window`
    and `latency_seed` while the answers do not)."""

    name = "scripted-streaming"
    batched = False

    def __init__(self, window: int, max_latency: float = 0.002, latency_seed: int = 0) -> None:
        super().__init__()
        self._window, self.max_latency = window, max_latency
        self._latency = random.Random(latency_seed)
        self.in_flight = self.peak_in_flight = 0

    @property
    def window(self) -> int:
        return self._window

    async def agenerate(self, prompts_: Sequence[str], params: SamplingParams) -> list[Completion]:
        self.in_flight += len(prompts_)
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self._latency.uniform(0, self.max_latency))
            return self.generate(prompts_, params)
        finally:
            self.in_flight -= len(prompts_)
