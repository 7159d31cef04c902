"""What the server backends (`tgi`, `openai`) share: concurrency, retries, endpoint rotation, usage.

Every prompt of a `generate()` or `agenerate()` call becomes one asyncio task. A task takes a
slot on whichever endpoint has the most room (`max_concurrency` slots per endpoint), so requests
spread over all servers and a slow one holds a single slot, never the batch. Results are
gathered by index: a caller sees completions in prompt order whatever order they arrive in. The
pipeline's scheduler awaits one `agenerate` per request on the backend's one event loop
(`Backend.run`), so all its requests, of every step, share the `window` of slots.

Endpoints, their request slots and their rotation live in `endpoints.py`.

Faults, in the order the code meets them:
- timeouts (`timeout` bounds a whole attempt, not each read: a server that trickles bytes is cut
  off too), connection errors, malformed responses (bad JSON or UTF-8, fields of the wrong type),
  408/424/429/5xx: retried with exponential backoff and jitter (tenacity), or after the wait a
  429's or 503's `Retry-After` asks for, within the attempt's deadline (`retries.py`), each retry
  on whichever endpoint is free next;
- an endpoint with `failures_to_cooldown` consecutive failures leaves the rotation for `cooldown`
  seconds, then gets requests again (one success resets it);
- a prompt whose retries are spent comes back as `None` in its place, is logged and counted in
  `usage.failed_requests`; if at that point every endpoint is cooling down the servers are gone,
  and `EndpointsUnavailableError` stops the run instead (resume from the run log later);
- any other 4xx means our request is wrong (bad parameters, prompt too long, no key): retrying
  cannot help, so `RequestRejectedError` stops the run at once with the server's own message.

Errors and their messages (servers' bodies cut short, without keys, tokens or URL credentials)
are in `errors.py`. A 200 without token counts (`usage` is optional in the OpenAI protocol) is an
answer: its counts are unknown (`None`), never 0.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx2
from tenacity import RetryCallState

from self_instruct.backends.base import (
    Backend,
    ChatPrompt,
    Completion,
    Prompt,
    SamplingParams,
    add_counts,
)
from self_instruct.backends.endpoints import EndpointPool, RetryPolicy, Slot, open_endpoint
from self_instruct.backends.errors import (
    BackendError,
    EndpointsUnavailableError,
    MalformedResponseError,
    RequestRejectedError,
    answer_parsing,
    describe_error,
    is_transient,
    rejected,
    response_of,
)
from self_instruct.backends.fields import openai_response_format, sampling_fields, to_completion
from self_instruct.backends.retries import retry_note, retrying
from self_instruct.backends.urls import check_endpoint_url
from self_instruct.utils.redaction import redact_url

if TYPE_CHECKING:
    from self_instruct.schemas import ResponseSchema

logger = logging.getLogger(__name__)

__all__ = [
    "BackendError",
    "EndpointsUnavailableError",
    "HTTPBackend",
    "MalformedResponseError",
    "RequestRejectedError",
]


class HTTPBackend(Backend):
    """A `Backend` over inference servers; subclasses speak one protocol in `_request`."""

    batched = False  # each request frees its slot as soon as it is answered

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        model: str,
        max_concurrency: int = 64,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        if not endpoints:
            raise ValueError(f"The {self.name} backend needs at least one --endpoint URL.")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
        for url in endpoints:
            check_endpoint_url(url)
        self.endpoint_urls = [url.rstrip("/") for url in endpoints]
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.api_key = api_key
        self._pool: EndpointPool | None = None
        self._active_calls, self._busy_since = 0, 0.0
        self._last_error: str = ""  # of the latest request that failed for good

    @property
    def window(self) -> int:
        """Every slot of every endpoint."""
        return self.max_concurrency * len(self.endpoint_urls)

    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[Completion | None]:
        """One completion per prompt, in prompt order; `None` where a request failed for good."""
        return self.run(self.agenerate(prompts, params))

    async def agenerate(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[Completion | None]:
        """`generate` on the backend's loop: calls awaited at once share the slots.

        `usage.seconds` counts the wall time with any call in flight, not each call's: the
        scheduler has many at once."""
        if not self._active_calls:
            self._busy_since = time.perf_counter()
        self._active_calls += 1
        try:
            results = await self._generate_all(prompts, params)
        finally:
            self._active_calls -= 1
            if not self._active_calls:
                self.usage.seconds += time.perf_counter() - self._busy_since
        self.usage.add([c for c in results if c is not None], 0.0)
        self.usage.failed_requests += sum(c is None for c in results)
        self.usage.per_endpoint = {e.url: dict(e.stats) for e in self._pool.endpoints}
        if None in results and self._pool.all_down():
            raise EndpointsUnavailableError(
                f"{sum(c is None for c in results)} of {len(results)} requests failed and every "
                f"endpoint ({', '.join(map(redact_url, self.endpoint_urls))}) is failing: check "
                "the servers. "
                f"Last error: {self._last_error}"
            )
        return results

    def prompt_room(self, max_new_tokens: int) -> int | None:
        return self._ask_servers(lambda session, url: self._room(session, url, max_new_tokens))

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        async def count(session: httpx2.AsyncClient, url: str) -> list[int] | None:
            counts = await asyncio.gather(*(self._count(session, url, text) for text in texts))
            return None if None in counts else list(counts)

        return self._ask_servers(count)

    async def _room(self, session: httpx2.AsyncClient, url: str, max_new_tokens: int) -> int | None:
        """What the server says `prompt_room` is (see limits.py); `None` if it does not say."""
        return None

    async def _count(self, session: httpx2.AsyncClient, url: str, text: str) -> int | None:
        """The server's token count for `text` (see limits.py); `None` if it has no tokenizer."""
        return None

    def _ask_servers(self, ask):
        """The first endpoint's answer to `ask(session, url)` that is not `None`, on a session of
        its own (the slots' sessions are for generation); a server that takes longer than
        `timeout` to say has said nothing."""

        async def first_answer():
            headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else None
            async with httpx2.AsyncClient(timeout=self.timeout, headers=headers) as session:
                for url in self.endpoint_urls:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.timeout):
                            if (answer := await ask(session, url)) is not None:
                                return answer
            return None

        return self.run(first_answer())

    async def _aclose(self) -> None:
        await super()._aclose()  # the requests first: they use the sessions
        if self._pool is not None:
            slots = [slot for endpoint in self._pool.endpoints for slot in endpoint.slots]
            await asyncio.gather(*(slot.session.aclose() for slot in slots))
            self._pool = None

    async def _generate_all(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[Completion | None]:
        if self._pool is None:
            tls = httpx2.create_ssl_context()  # one for all sessions: each costs ~20 ms to load
            endpoints = [
                open_endpoint(url, self.max_concurrency, self.timeout, self.api_key, tls)
                for url in self.endpoint_urls
            ]
            self._pool = EndpointPool(endpoints, self.retry)
        tasks = [asyncio.ensure_future(self._complete(p, params)) for p in prompts]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:  # a rejected request stops the batch: do not leave tasks behind
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _complete(self, prompt: Prompt, params: SamplingParams) -> Completion | None:
        try:
            completion = await retrying(self.retry, self.timeout, self._log_retry)(
                self._attempt, prompt, params
            )
        except Exception as error:
            self._report("finished")
            response = response_of(error)
            if not is_transient(error):
                if response is None:
                    raise
                raise rejected(response) from error
            self._last_error = describe_error(error)
            attempts = self.retry.max_attempts
            logger.error(
                "Request failed for good after %d attempts: %s", attempts, describe_error(error)
            )
            return None
        self._report("finished")
        return completion

    async def _attempt(self, prompt: Prompt, params: SamplingParams) -> Completion:
        slot = await self._pool.acquire()
        self._report("started")
        endpoint = slot.endpoint
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):  # the whole answer, however it trickles in
                completion = await self._request(slot, prompt, params)
        except TimeoutError as error:
            self._pool.failed(endpoint)
            raise TimeoutError(
                f"{redact_url(endpoint.url)} sent no complete answer within {self.timeout:g}s "
                "(--request-timeout)"
            ) from error
        except Exception as error:
            if is_transient(error):  # a 4xx is our request's fault, not the server's
                self._pool.failed(endpoint)
            raise
        finally:  # also when cancelled, which says nothing about the server
            self._pool.release(slot)
        self._pool.succeeded(endpoint)
        stats = endpoint.stats
        stats["requests"] += 1
        stats["prompt_tokens"] = add_counts(stats["prompt_tokens"], completion.prompt_tokens)
        stats["completion_tokens"] = add_counts(
            stats["completion_tokens"], completion.completion_tokens
        )
        stats["seconds"] += time.perf_counter() - start
        return completion

    def _log_retry(self, state: RetryCallState) -> None:
        self._report("retried")
        logger.warning(
            "Retrying in %.1fs%s [attempt %d/%d]: %s",
            state.next_action.sleep if state.next_action else 0.0,
            retry_note(state, self.timeout),
            state.attempt_number + 1,
            self.retry.max_attempts,
            describe_error(state.outcome.exception()) if state.outcome else None,
        )

    @abc.abstractmethod
    async def _request(self, slot: Slot, prompt: Prompt, params: SamplingParams) -> Completion:
        """Send one prompt through one slot and parse the answer (text cut at the first stop)."""

    def response_format(self, schema: ResponseSchema) -> dict:
        """How a JSON schema rides on a chat request: OpenAI's field (fields.py); TGI's differs."""
        return openai_response_format(schema)

    async def _chat_completion(
        self, slot: Slot, prompt: ChatPrompt, params: SamplingParams
    ) -> Completion:
        """`/v1/chat/completions`, which vLLM, SGLang, llama.cpp and TGI all serve: the server
        applies the model's chat template to the messages."""
        with answer_parsing(slot.endpoint.url):
            fields = sampling_fields(params)
            if params.schema is not None:
                fields["response_format"] = self.response_format(params.schema)
            output = await slot.client.chat_completion(
                prompt.as_dicts(), model=self.model, **fields
            )
            if not output.choices:
                raise MalformedResponseError("answered without choices")
            choice, usage = output.choices[0], output.usage  # usage is optional
            content = choice.message.content  # may be null: a model that said nothing (yet)
            return to_completion(
                "" if content is None else content,
                choice.finish_reason,
                params,
                usage.prompt_tokens if usage else None,
                usage.completion_tokens if usage else None,
            )
