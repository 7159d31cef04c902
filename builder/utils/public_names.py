"""Names safe to publish: a local path cut to its name, an endpoint URL replaced."""

from __future__ import annotations

import shlex
from pathlib import Path

URL_PLACEHOLDER = "URL"  # what the card's command shows in place of an endpoint


def public_name(value: str) -> str:
    """A local file or folder by its name alone; anything else (Hub id, 'bundled') unchanged."""
    path = Path(value)
    return path.name if path.is_absolute() or path.exists() else value


def public_command(command: str) -> str:
    """`command` with endpoint URLs replaced and local paths cut to their names."""
    try:
        split = shlex.split(command)
    except ValueError:  # an unbalanced quote: the command was joined without quoting
        split = command.split()
    words = []
    for word in split:
        flag, equals, value = word.partition("=") if word.startswith("--") else ("", "", word)
        value = URL_PLACEHOLDER if "://" in value else public_name(value) if value else value
        words.append(f"{flag}{equals}{value}")
    return shlex.join(words)
