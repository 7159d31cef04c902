"""How long a request waits before it is sent again, and for how many tries.

Between attempts the wait is exponential backoff with jitter (`RetryPolicy`), unless the server
said when to come back: a 429 or 503 with `Retry-After` (seconds, or an HTTP date) is not sent
again sooner than that. A server may ask for hours (a daily quota, a misconfigured gateway), so
the wait it asks for is capped by what is left of the attempt's deadline (`--request-timeout`
less the time its answer took): past it the request is tried again, and after its last attempt
fails for good, never hanging the run.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx2
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from self_instruct.backends.endpoints import RetryPolicy
from self_instruct.backends.errors import is_transient, response_of

RETRY_AFTER_STATUS_CODES = frozenset({429, 503})  # where RFC 9110 gives Retry-After a meaning


def retrying(
    policy: RetryPolicy, timeout: float, before_sleep: Callable[[RetryCallState], None]
) -> AsyncRetrying:
    """Tenacity's retry loop for one request: transient errors only, `policy.max_attempts` tries,
    the waits of `ServerWait`."""
    backoff = wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait)
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=ServerWait(backoff + wait_random(0, policy.jitter), timeout),
        stop=stop_after_attempt(policy.max_attempts),
        before_sleep=before_sleep,
        reraise=True,
    )


@dataclass(frozen=True)
class ServerWait:
    """A tenacity wait: the backoff, or longer where the server's `Retry-After` asks for it, up
    to the failed attempt's deadline."""

    backoff: Callable[[RetryCallState], float]
    timeout: float  # seconds an attempt may take in all

    def __call__(self, state: RetryCallState) -> float:
        wait = self.backoff(state)
        asked = asked_wait(state, self.timeout)
        if asked is None:
            return wait
        return max(wait, min(asked.seconds, asked.deadline))


@dataclass(frozen=True)
class AskedWait:
    """What a server asked of the next attempt, and how long the failed one's deadline allows."""

    seconds: float
    deadline: float  # seconds left of the failed attempt's `timeout`

    @property
    def capped(self) -> bool:
        return self.seconds > self.deadline


def asked_wait(state: RetryCallState, timeout: float) -> AskedWait | None:
    """The `Retry-After` of the response behind a failed attempt, if it had one worth reading;
    `timeout` is what the attempt had in all."""
    error = state.outcome.exception() if state.outcome is not None else None
    response = response_of(error)
    if response is None or (seconds := retry_after(response)) is None:
        return None
    return AskedWait(seconds, max(0.0, timeout - _elapsed(response)))


def retry_after(response: httpx2.Response) -> float | None:
    """Seconds a 429 or 503 asks the client to wait (`Retry-After`); `None` if it does not say.

    An HTTP date is read against the server's own `Date` header where it sends one, so that a
    clock that differs from ours does not change the wait.
    """
    value = response.headers.get("retry-after", "").strip()
    if response.status_code not in RETRY_AFTER_STATUS_CODES or not value:
        return None
    if value.isascii() and value.isdigit():  # delta-seconds ("²" is a digit too)
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(response.headers.get("date", "")) or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _elapsed(response: httpx2.Response) -> float:
    """Seconds from sending the request to the end of its answer (0 if not yet known)."""
    try:
        return response.elapsed.total_seconds()
    except RuntimeError:  # a response whose body was never read
        return 0.0


def retry_note(state: RetryCallState, timeout: float) -> str:
    """What the retry warning says of the server's `Retry-After`, if it sent one."""
    if (asked := asked_wait(state, timeout)) is None:
        return ""
    capped = ", capped by the --request-timeout deadline" if asked.capped else ""
    return f" (the server's Retry-After: {asked.seconds:g}s{capped})"
