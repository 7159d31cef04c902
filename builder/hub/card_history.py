"""The version history a dataset card carries: one entry per pushed version, oldest first.

The entries live in the card's YAML (`self_instruct_versions`), so each push reads them from the
card of the version before it and appends its own; the Markdown table between the two markers is
rendered from them. The card of v2 therefore lists v1 and v2, and v1's card stays as it was.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

HISTORY_KEY = "self_instruct_versions"
START = "<!-- version-history:start -->"
END = "<!-- version-history:end -->"


def data_fingerprint(data_files: list[str]) -> str:
    """Data file names carry their content hash, so their sorted list identifies the data."""
    return hashlib.sha256("\n".join(sorted(data_files)).encode()).hexdigest()[:12]


def new_entry(
    tag: str, rows: dict[str, int], model: str | None, data: str, previous: list[dict[str, Any]]
) -> dict[str, Any]:
    """The entry of a version about to be pushed; `changes` compares its rows with the last."""
    before = previous[-1]["rows"] if previous else {}
    changes = ", ".join(f"{n - before.get(config, 0):+d} {config}" for config, n in rows.items())
    return {
        "tag": tag,
        "date": datetime.now(UTC).date().isoformat(),
        "rows": rows,
        "model": model or "unknown",
        "data": data,
        "changes": changes if previous else "first version",
    }


def render_table(history: list[dict[str, Any]]) -> str:
    configs = list(history[-1]["rows"])
    header = "| version | date | " + " | ".join(configs) + " | model | changes |"
    lines = [header, "|" + "---|" * (len(configs) + 4)]
    for e in reversed(history):  # newest first, as people read a changelog
        counts = " | ".join(str(e["rows"].get(c, 0)) for c in configs)
        lines.append(f"| `{e['tag']}` | {e['date']} | {counts} | {e['model']} | {e['changes']} |")
    return "\n".join(lines)


def with_history(card_text: str, history: list[dict[str, Any]]) -> str:
    """`card_text` (a README.md with YAML) carrying `history` in its YAML and as a table."""
    from huggingface_hub import DatasetCard

    card = DatasetCard(card_text)
    card.data[HISTORY_KEY] = history
    section = f"{START}\n## Version history\n\n{render_table(history)}\n{END}"
    text = card.text
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    return f"---\n{card.data.to_yaml()}\n---\n{text}"


def read_history(card_text: str | None) -> list[dict[str, Any]]:
    if not card_text:
        return []
    from huggingface_hub import DatasetCard

    return list(DatasetCard(card_text).data.get(HISTORY_KEY) or [])
