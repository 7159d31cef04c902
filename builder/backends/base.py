"""The one interface between the pipeline and anything that produces text.

The pipeline hands a backend a batch of prompts and gets back one `Completion` per prompt, in the
same order. That order is the contract that keeps runs deterministic whatever the backend does
inside (batched `generate`, many HTTP requests in flight): acceptance follows request order, never
arrival order.

The scheduler (generation/scheduler.py) keeps `window` requests in flight. It awaits `agenerate`
on the backend's own event loop (`run`): a server backend answers each request on its own, as
soon as it is done, so `batched` is False and the scheduler sends one request per call; an
in-process backend (`batched`) answers a call of up to `window` prompts in one `generate()`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

if TYPE_CHECKING:
    from self_instruct.config import PipelineConfig
    from self_instruct.schemas import ResponseSchema

FinishReason = Literal["stop", "length"]
# What a backend reports of each request as it goes, for a live progress display: it started
# (is being generated, holds a server slot), went back to wait for a retry, or finished for good.
RequestEvent = Literal["started", "retried", "finished"]
RequestHook = Callable[[RequestEvent, int], None]
T = TypeVar("T")


class Message(NamedTuple):
    """One turn of a chat: `role` is "system", "user" or "assistant"."""

    role: str
    content: str


@dataclass(frozen=True)
class ChatPrompt:
    """A prompt for a chat model (`--chat`): messages that the model's own chat template turns
    into text, on the server (`/v1/chat/completions`) or in-process (`apply_chat_template`)."""

    messages: tuple[Message, ...]

    def as_dicts(self) -> list[dict[str, str]]:
        """The messages as the OpenAI chat API and `apply_chat_template` take them."""
        return [message._asdict() for message in self.messages]

    def text(self) -> str:
        """The messages' contents alone, for token counts that leave the template out."""
        return "\n".join(message.content for message in self.messages)


# What a backend is asked to complete: raw text to continue (the paper's prompts) or a chat.
Prompt = str | ChatPrompt


@dataclass(frozen=True)
class SamplingParams:
    """Generation parameters for one batch; a backend ignores what its engine cannot honour."""

    max_new_tokens: int
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    seed: int | None = None
    # --structured: the answer must be JSON fitting this schema (servers get it in their own
    # request field, the transformers backend decodes under it).
    schema: ResponseSchema | None = None


@dataclass
class Completion:
    """One prompt's result. `text` is cut before the first stop sequence, which is not included.

    A token count is `None` where the server did not say (`usage` is optional in the OpenAI
    protocol): unknown, never 0.
    """

    text: str
    finish_reason: FinishReason
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0


N = TypeVar("N", int, float)


def add_counts(total: N | None, count: N | None) -> N | None:
    """`total + count`, unknown (`None`) if either is: a sum that left out the requests a server
    did not count would pass for a measurement."""
    return None if total is None or count is None else total + count


@dataclass
class Usage:
    """Token and request accounting, summed into the run statistics; a token count is `None`
    once one request's is unknown."""

    requests: int = 0
    failed_requests: int = 0
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    seconds: float = 0.0
    per_endpoint: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def add(self, completions: Sequence[Completion], seconds: float) -> None:
        self.requests += len(completions)
        for completion in completions:
            self.prompt_tokens = add_counts(self.prompt_tokens, completion.prompt_tokens)
            self.completion_tokens = add_counts(
                self.completion_tokens, completion.completion_tokens
            )
        self.seconds += seconds


class Backend(abc.ABC):
    """Produces completions for batches of prompts. Subclasses implement `_generate`."""

    name: str = "base"
    # One call carries up to `window` prompts and holds the whole window (in-process batching);
    # False: every request is its own call and frees its slot alone (servers).
    batched: bool = True

    def __init__(self) -> None:
        self.usage = Usage()
        self.on_request: RequestHook | None = None  # set by whoever displays progress
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def window(self) -> int:
        """How many requests the backend serves at once: the scheduler keeps that many in
        flight."""
        return 1

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the backend's event loop, one for its whole life: a server
        backend's connections live on it, and the scheduler's tasks wait on it between calls."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    async def agenerate(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[Completion | None]:
        """`generate` for the scheduler. In-process backends compute right here, holding the
        loop: nothing else could run meanwhile anyway."""
        return self.generate(prompts, params)

    def _report(self, event: RequestEvent, n: int = 1) -> None:
        if self.on_request is not None:
            self.on_request(event, n)

    @abc.abstractmethod
    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[Completion | None]:
        """Return exactly one result per prompt, in prompt order.

        `None` stands for a request that failed for good after its retries (server backends
        only); it is counted in `usage.failed_requests`, and the pipeline skips it.
        """

    @classmethod
    def describe_model(cls, config: PipelineConfig) -> tuple[str, str | None]:
        """(model, revision) as the dataset card names them, from the options alone: naming a
        model must not load it (a finished run's card is rewritten without a model). A server's
        model is what `--model` asked it for, at `--model-revision` if given."""
        return config.model, config.model_revision

    def prompt_room(self, max_new_tokens: int) -> int | None:
        """The most prompt tokens one request generating `max_new_tokens` may carry; `None`
        where the model's context is unknown (a server that does not say)."""
        return None

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in the model's tokens; `None` where no tokenizer is reachable."""
        return None

    def close(self) -> None:
        """Release engines, sessions or servers; safe to call twice."""
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # a loop that Ctrl-C stopped may not run again
            self._loop.run_until_complete(self._aclose())
        self._loop.close()
        self._loop = None

    async def _aclose(self) -> None:
        """On the loop, at close: end the requests a stopped run left cancelled or in flight."""
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before its earliest stop sequence; say whether one was found."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
