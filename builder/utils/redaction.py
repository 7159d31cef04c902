"""What the tool may say of any text: no key, no token, no credentials in a URL.

Servers quote our requests back in their error pages (some gateways echo the `Authorization`
header), exceptions carry URLs, and all of it reaches the terminal, the logs and the card. So
every message that holds words we did not write passes through `redact` before it is shown:
the backends' errors where a server's words enter a message (`backends/errors.py`), the log
handler (`utils/verbosity.py`), and the CLI's error line, the last line of defence.

- the values of `SELF_INSTRUCT_API_KEY` and `HF_TOKEN`, wherever they appear;
- any bearer token, any `Authorization` header's value, anything shaped like a Hugging Face
  token (`hf_` and 20 or more letters and digits), whoever sent it;
- a URL's user info (`user:password@`), query string and fragment, where credentials hide.
"""

from __future__ import annotations

import os
import re
from urllib.parse import SplitResult, urlsplit

API_KEY_ENV = "SELF_INSTRUCT_API_KEY"  # the servers' bearer token: never an option, never stored
SECRET_ENVS = (API_KEY_ENV, "HF_TOKEN")  # whose values are never said
HIDDEN = "***"

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# A header's value up to the end of its line or of a quoted string: "Authorization: Basic abc",
# {"authorization": "Bearer abc"}.
_AUTHORIZATION = re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]+")
_BEARER = re.compile(r"(?i)(\bbearer\s+)[^\s\"',;]+")
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}")


def redact(text: str) -> str:
    """`text` with every secret and every URL's credentials shown as ***."""
    return redact_urls(redact_secrets(text))


def redact_secrets(text: str) -> str:
    """`text` without the keys and tokens listed in the module docstring."""
    for name in SECRET_ENVS:
        if value := os.environ.get(name, "").strip():
            text = text.replace(value, HIDDEN)
    text = _AUTHORIZATION.sub(rf"\g<1>{HIDDEN}", text)
    text = _BEARER.sub(rf"\g<1>{HIDDEN}", text)
    return _HF_TOKEN.sub(HIDDEN, text)


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
