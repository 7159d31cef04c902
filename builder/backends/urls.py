"""Where the user's Hugging Face token may go, and which endpoint URLs are refused.

Endpoint URLs with user info or a query string are refused outright (`check_endpoint_url`): a
key belongs in `SELF_INSTRUCT_API_KEY`, not in a command line that shells, `ps` and dataset cards
keep. What the tool says of any URL or secret it meets anyway is in `../redaction.py`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from self_instruct.errors import ConfigError
from self_instruct.utils.redaction import API_KEY_ENV, redact_url

__all__ = ["API_KEY_ENV", "check_endpoint_url", "may_receive_hf_token"]

# Hugging Face's own inference services, the only hosts the user's HF token is sent to (over
# https only): the router of Inference Providers, the serverless Inference API, and dedicated
# Inference Endpoints. Not Spaces (`*.hf.space`): anyone can run one.
HF_TOKEN_HOSTS = frozenset({"router.huggingface.co", "api-inference.huggingface.co"})
HF_TOKEN_HOST_SUFFIXES = (".endpoints.huggingface.cloud",)


def may_receive_hf_token(url: str) -> bool:
    """True only for https URLs of Hugging Face's own inference hosts."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https":
        return False
    return host in HF_TOKEN_HOSTS or host.endswith(HF_TOKEN_HOST_SUFFIXES)


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
