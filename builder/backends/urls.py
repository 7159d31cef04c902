"""What may be said about an endpoint URL, and where the user's Hugging Face token may go.

A URL's user info (`user:password@`) and query string are where credentials hide, and the tool
prints and writes URLs in many places: retry warnings, errors, the card's "To reproduce" command,
provenance. Everything it says passes through `redact_urls` first. Endpoint URLs with user info
are refused outright (`check_endpoint_url`): a key belongs in `SELF_INSTRUCT_API_KEY`, not in a
command line that shells, `ps` and dataset cards keep.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from ..config import ConfigError

API_KEY_ENV = "SELF_INSTRUCT_API_KEY"  # the servers' bearer token: never an option, never stored
HIDDEN = "***"

# Hugging Face's own inference services, the only hosts the user's HF token is sent to (over
# https only): the router of Inference Providers, the serverless Inference API, and dedicated
# Inference Endpoints. Not Spaces (`*.hf.space`): anyone can run one.
HF_TOKEN_HOSTS = frozenset({"router.huggingface.co", "api-inference.huggingface.co"})
HF_TOKEN_HOST_SUFFIXES = (".endpoints.huggingface.cloud",)

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def may_receive_hf_token(url: str) -> bool:
    """True only for https URLs of Hugging Face's own inference hosts."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https":
        return False
    return host in HF_TOKEN_HOSTS or host.endswith(HF_TOKEN_HOST_SUFFIXES)


def redact_url(url: str) -> str:
    """`url` without its password, user name, query string or fragment (each shown as ***)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:  # not even parseable: say nothing of it
        return HIDDEN
    netloc = f"{HIDDEN}@{host}" if "@" in parts.netloc else host
    return SplitResult(
        parts.scheme,
        netloc,
        parts.path,
        HIDDEN if parts.query else "",
        HIDDEN if parts.fragment else "",
    ).geturl()


def redact_urls(text: str) -> str:
    """Every URL inside `text` redacted: for messages, logs and the card."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


def check_endpoint_url(url: str) -> None:
    """Refuse an endpoint URL that carries credentials; the message never repeats them."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ConfigError(
            f"--endpoint {redact_url(url)}: a user name or password in an endpoint URL is not "
            f"used. Remove it, and put the server's key in the {API_KEY_ENV} environment "
            "variable (sent as a bearer token, never stored)."
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"--endpoint {redact_url(url)}: an endpoint is a base URL, without a query string "
            f"or fragment. Remove them; a key goes in the {API_KEY_ENV} environment variable."
        )
