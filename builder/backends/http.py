"""What the server backends (`tgi`, `openai`) share: concurrency, retries, endpoint rotation, usage.

Every prompt of a `generate()` call becomes one asyncio task. A task takes a slot on whichever
endpoint has the most room (`max_concurrency` slots per endpoint), so requests spread over all
servers and a slow one holds a single slot, never the batch. Results are gathered by index: the
pipeline sees completions in prompt order whatever order they arrive in.

Endpoints, their request slots and their rotation live in `endpoints.py`.

Faults, in the order the code meets them:
- timeouts, connection errors, malformed responses, 408/424/429/5xx: retried with exponential
  backoff and jitter (tenacity), each retry on whichever endpoint is free next;
- an endpoint with `failures_to_cooldown` consecutive failures leaves the rotation for `cooldown`
  seconds, then gets requests again (one success resets it);
- a prompt whose retries are spent comes back as `None` in its place, is logged and counted in
  `usage.failed_requests`; if at that point every endpoint is cooling down the servers are gone,
  and `EndpointsUnavailableError` stops the run instead (resume from the run log later);
- any other 4xx means our request is wrong (bad parameters, prompt too long): retrying cannot
  help, so `RequestRejectedError` stops the run at once with the server's own message.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import time
from collections.abc import Sequence

import httpx2
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from .base import Backend, Completion, SamplingParams, cut_at_stop
from .endpoints import EndpointPool, RetryPolicy, Slot, open_endpoint

logger = logging.getLogger(__name__)

RETRY_STATUS_CODES = frozenset({408, 424, 429})  # and every 5xx


class BackendError(RuntimeError):
    """A server backend cannot go on; the message says why."""


class RequestRejectedError(BackendError):
    """A server refused a request as invalid (4xx): fix the parameters, retrying will not help."""


class EndpointsUnavailableError(BackendError):
    """Requests failed for good while every endpoint was out of rotation."""


class MalformedResponseError(BackendError):
    """A 200 response without the fields its protocol promises; retried like a server error."""


def _response(error: BaseException | None) -> httpx2.Response | None:
    """The HTTP response behind an error, also when huggingface_hub re-raised it as its own type."""
    while error is not None:
        response = getattr(error, "response", None)
        if isinstance(response, httpx2.Response):
            return response
        error = error.__cause__
    return None


def is_transient(error: BaseException) -> bool:
    """Worth retrying: the same request may well succeed on another try or another server."""
    response = _response(error)
    if response is not None:
        return response.status_code in RETRY_STATUS_CODES or response.status_code >= 500
    return isinstance(
        error, (TimeoutError, httpx2.TransportError, json.JSONDecodeError, MalformedResponseError)
    )


def describe(error: BaseException) -> str:
    """An error as the user needs it: the server's own words when there are some."""
    response = _response(error)
    if response is None:
        return repr(error)
    return f"HTTP {response.status_code} from {response.request.url}: {response.text[:1000]}"


def rejected(response: httpx2.Response) -> RequestRejectedError:
    """Turn a 4xx into a message that names the server's complaint."""
    return RequestRejectedError(
        f"{response.request.url} rejected a request with HTTP {response.status_code}: "
        f"{response.text.strip() or 'no details'}. Check the generation options "
        "(--max-new-tokens, --temperature, ...) against what the server accepts."
    )


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
    """
    if text is None or finish_reason is None:
        raise MalformedResponseError(f"response without text or finish reason: {text!r}")
    text, stopped = cut_at_stop(text, params.stop)
    reason = "length" if finish_reason == "length" and not stopped else "stop"
    return Completion(text, reason, int(prompt_tokens or 0), int(completion_tokens or 0))


class HTTPBackend(Backend):
    """A `Backend` over inference servers; subclasses speak one protocol in `_request`."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        model: str,
        max_concurrency: int = 8,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        if not endpoints:
            raise ValueError(f"The {self.name} backend needs at least one --endpoint URL.")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
        self.endpoint_urls = [url.rstrip("/") for url in endpoints]
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.api_key = api_key
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: EndpointPool | None = None
        self._last_error: str = ""  # of the latest request that failed for good

    @property
    def model_name(self) -> str:
        return self.model

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Completion | None]:
        """One completion per prompt, in prompt order; `None` where a request failed for good."""
        if self._loop is None:  # one loop for the backend's life keeps connections alive
            self._loop = asyncio.new_event_loop()
        start = time.perf_counter()
        results = self._loop.run_until_complete(self._generate_all(prompts, params))
        self.usage.add([c for c in results if c is not None], time.perf_counter() - start)
        self.usage.failed_requests += sum(c is None for c in results)
        self.usage.per_endpoint = {e.url: dict(e.stats) for e in self._pool.endpoints}
        if None in results and self._pool.all_down():
            raise EndpointsUnavailableError(
                f"{sum(c is None for c in results)} of {len(results)} requests failed and every "
                f"endpoint ({', '.join(self.endpoint_urls)}) is failing: check the servers. "
                f"Last error: {self._last_error}"
            )
        return results

    def close(self) -> None:
        if self._loop is None:
            return
        if self._pool is not None:
            self._loop.run_until_complete(self._close_sessions())
        self._loop.close()
        self._loop, self._pool = None, None

    async def _close_sessions(self) -> None:
        slots = [slot for endpoint in self._pool.endpoints for slot in endpoint.slots]
        await asyncio.gather(*(slot.session.aclose() for slot in slots))

    async def _generate_all(
        self, prompts: Sequence[str], params: SamplingParams
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

    async def _complete(self, prompt: str, params: SamplingParams) -> Completion | None:
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential(multiplier=self.retry.initial_wait, max=self.retry.max_wait)
            + wait_random(0, self.retry.jitter),
            stop=stop_after_attempt(self.retry.max_attempts),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            completion = await retrying(self._attempt, prompt, params)
        except Exception as error:
            self._report("finished")
            response = _response(error)
            if not is_transient(error):
                if response is None:
                    raise
                raise rejected(response) from error
            self._last_error = describe(error)
            attempts = self.retry.max_attempts
            logger.error("Request failed for good after %d attempts: %s", attempts, describe(error))
            return None
        self._report("finished")
        return completion

    async def _attempt(self, prompt: str, params: SamplingParams) -> Completion:
        slot = await self._pool.acquire()
        self._report("started")
        endpoint = slot.endpoint
        start = time.perf_counter()
        try:
            completion = await self._request(slot, prompt, params)
        except Exception as error:
            if is_transient(error):  # a 4xx is our request's fault, not the server's
                self._pool.failed(endpoint)
            raise
        finally:  # also when cancelled, which says nothing about the server
            self._pool.release(slot)
        self._pool.succeeded(endpoint)
        stats = endpoint.stats
        stats["requests"] += 1
        stats["prompt_tokens"] += completion.prompt_tokens
        stats["completion_tokens"] += completion.completion_tokens
        stats["seconds"] += time.perf_counter() - start
        return completion

    def _log_retry(self, state: RetryCallState) -> None:
        self._report("retried")
        logger.warning(
            "Retrying in %.1fs [attempt %d/%d]: %r",
            state.next_action.sleep if state.next_action else 0.0,
            state.attempt_number + 1,
            self.retry.max_attempts,
            state.outcome.exception() if state.outcome else None,
        )

    @abc.abstractmethod
    async def _request(self, slot: Slot, prompt: str, params: SamplingParams) -> Completion:
        """Send one prompt through one slot and parse the answer (text cut at the first stop)."""
