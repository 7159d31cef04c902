"""The server backends' errors, and how they read to a user.

Which errors are worth retrying (`is_transient`), and messages that quote a server's own words
or an exception's: `quote` is where those words enter a message, cut to `MAX_QUOTED` characters
(error pages run to megabytes) and redacted (no key or token, no URL's credentials: some
gateways quote the request's `Authorization` header back).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx2

from self_instruct.utils.causes import causes
from self_instruct.utils.redaction import API_KEY_ENV, redact, redact_url

RETRY_STATUS_CODES = frozenset({408, 424, 429})  # and every 5xx
MAX_QUOTED = 500  # characters of a server's answer quoted in a message (error pages run to MBs)


class BackendError(RuntimeError):
    """A server backend cannot go on; the message says why."""


class RequestRejectedError(BackendError):
    """A server refused a request as invalid (4xx): fix the parameters, retrying will not help."""


class EndpointsUnavailableError(BackendError):
    """Requests failed for good while every endpoint was out of rotation."""


class MalformedResponseError(BackendError):
    """A 200 response without the fields its protocol promises; retried like a server error."""


def response_of(error: BaseException | None) -> httpx2.Response | None:
    """The HTTP response behind an error, also when huggingface_hub re-raised it as its own type
    (a chain that loops back ends the walk: see utils/causes.py)."""
    for err in causes(error):
        if isinstance(response := getattr(err, "response", None), httpx2.Response):
            return response
    return None


def is_transient(error: BaseException) -> bool:
    """Worth retrying: the same request may well succeed on another try or another server."""
    response = response_of(error)
    if response is not None:
        return response.status_code in RETRY_STATUS_CODES or response.status_code >= 500
    if isinstance(error, httpx2.UnsupportedProtocol):  # no http(s):// in the URL: never will be
        return False
    return isinstance(error, (TimeoutError, httpx2.TransportError, MalformedResponseError))


def quote(text: str, limit: int = MAX_QUOTED) -> str:
    """`text` for a message: secrets and URLs redacted, then cut to `limit` characters (in that
    order: a cut through a key would leave its start unmatched)."""
    text = redact(text).strip()
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


def describe_error(error: BaseException) -> str:
    """An error as the user needs it: the server's own words when there are some."""
    response = response_of(error)
    if response is None:
        return quote(f"{type(error).__name__}: {error}" if str(error) else repr(error))
    url = redact_url(str(response.request.url))
    return f"HTTP {response.status_code} from {url}: {quote(_body(response))}"


def _body(response: httpx2.Response) -> str:
    return response.content.decode("utf-8", errors="replace") or "no details"


def rejected(response: httpx2.Response) -> RequestRejectedError:
    """Turn a 4xx into a message that names the server's complaint and what to change."""
    status = response.status_code
    if status in (401, 403):
        fix = (
            f"The server wants a key: set the {API_KEY_ENV} environment variable to one it "
            f"accepts (it is {'set' if response.request.headers.get('authorization') else 'unset'}"
            " now)."
        )
    elif status == 404:
        fix = "Check the --endpoint URL and --backend (tgi posts to /generate, openai to /v1/...)."
    else:
        fix = (
            "Check the generation options (--max-new-tokens, --temperature, ...) and the "
            "prompt lengths against what the server accepts."
        )
    return RequestRejectedError(
        f"{redact_url(str(response.request.url))} rejected a request with HTTP {status}: "
        f"{quote(_body(response))}. {fix}"
    )


@contextlib.contextmanager
def answer_parsing(url: str) -> Iterator[None]:
    """Around reading a 200 answer: what its shape breaks (a list for an object, a number for a
    string, bad UTF-8) is a malformed answer, retried, never a traceback."""
    try:
        yield
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        if isinstance(error, httpx2.HTTPError):  # a status, not a body: BadRequestError is both
            raise
        why = quote(str(error))  # a parser's message may quote the answer
        raise MalformedResponseError(f"{redact_url(url)} answered malformed: {why}") from error
