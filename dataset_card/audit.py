"""The card's "Quality audit" section and the `audit` configuration in its YAML header.

An audit comes after the export that wrote the card, so it edits the card in place: its
configuration joins the YAML `configs:` and `dataset_info` (the same `datasets` classes the export
uses, so `load_dataset(folder, "audit")` works), and its section replaces an earlier audit's or
goes before the provenance. A later export (a resumed or grown run) writes a new card without it:
its data is new, and so is the audit it needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets import Dataset, Features, Value
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from self_instruct.audit.judge import QUESTIONS
from self_instruct.dataset_card.render import _dataset_info, _environment
from self_instruct.export.files import file_entries, read_manifest, remove_files, write_manifest
from self_instruct.layout import CARD, SPLIT
from self_instruct.utils.durable import write_durably

if TYPE_CHECKING:
    from self_instruct.audit.review import AuditResult

TEMPLATE = "audit.md.j2"
HEADING = "## Quality audit"
BEFORE = "## Provenance"  # where a first audit's section goes
LABELS = {  # the paper's Table 2 wording, in our words
    "valid_instruction": "The instruction describes a valid task",
    "appropriate_input": "The input is appropriate for the instruction",
    "correct_output": "The output is a correct and acceptable response",
    "all_valid": "All fields are valid",
}
SHORT = 160  # characters of a field shown in the examples' table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= SHORT else text[: SHORT - 3] + "..."


def render_section(
    summary: dict[str, Any], examples: dict[str, list[dict]], config_name: str
) -> str:
    """The section's Markdown: Table 2's layout, then examples of each question failed."""
    env = _environment()
    env.filters["short"] = _short
    return env.get_template(TEMPLATE).render(
        s=summary,
        labels=LABELS,
        examples=examples,
        percent=_percent,
        config_name=config_name,
        repo_id="path/to/this/dataset",
    )


def _with_section(text: str, section: str) -> str:
    """`text` with its audit section replaced by `section`, or `section` put before provenance."""
    old = re.search(rf"^{HEADING}\n.*?(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    if old:
        return text[: old.start()] + section + text[old.end() :]
    at = text.find(f"\n{BEFORE}\n")
    return text + "\n" + section if at < 0 else text[: at + 1] + section + text[at + 1 :]


def add_audit(folder: Path, name: str, data_file: str, rows: Dataset, section: str) -> list[str]:
    """Add configuration `name` (one Parquet file, relative to `folder`) and the section to
    `folder/README.md`, written through a temporary file and a rename; return the files of an
    earlier audit that the card stopped naming.

    The card's `self_instruct.files` gains the new file's size and hash, so a push checks and
    sends it with the rest of the version."""
    path = folder / CARD
    card = DatasetCard.load(path)
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    previous = [f for s in configs.get(name, {}).get("data_files", []) for f in s["path"]]
    configs[name] = {"data_files": [{"split": SPLIT, "path": [data_file]}]}
    configs.to_dataset_card_data(card.data)
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    infos[name] = _dataset_info(name, rows, folder, [data_file])
    infos.to_dataset_card_data(card.data)
    stale = [f for f in previous if f != data_file]
    origin = card.data.get("self_instruct") or {}
    files = {k: v for k, v in (origin.get("files") or {}).items() if k not in stale}
    card.data["self_instruct"] = {**origin, "files": files | file_entries(folder, [data_file])}
    card.text = _with_section(card.text, section)
    write_durably(path, str(card).encode("utf-8"))
    return stale


def _features() -> Features:
    string, flag = Value("string"), Value("bool")
    columns = {"id": string, "instruction_id": string, "instruction": string}
    columns |= {"is_classification": flag, "input": string, "output": string}
    for question in QUESTIONS:
        columns |= {question: flag, f"{question}_reason": string}
    return Features(columns | {"all_valid": flag, "failure": string, "judge_output": string})


def audit_rows(items: list[dict[str, Any]]) -> Dataset:
    """The `audit` configuration: each sampled item, its three answers and reasons, or why the
    judge gave none (`failure`, empty when it answered), and the judge's own text."""
    features = _features()
    return Dataset.from_list([{k: item[k] for k in features} for item in items], features=features)


def failure_examples(items: list[dict[str, Any]], per_question: int) -> dict[str, list[dict]]:
    """The first items judged "no" on each question (in sample order: reproducible)."""
    return {q: [i for i in items if i[q] is False][:per_question] for q in QUESTIONS}


def write_audit(folder: Path, result: AuditResult, name: str, examples: int) -> str:
    """Write configuration `name` and the card section; return the Parquet file's path.

    The new file is in place before the card names it, and an earlier audit's file goes only
    after the card stopped naming it, so the card never lists a file that is missing; only files
    an earlier audit's card named are deleted. The folder's lock is held (`audit_lock`)."""
    from self_instruct.audit.review import audit_lock
    from self_instruct.export.folder import write_parquet

    with audit_lock(folder):
        rows = audit_rows(result.items)
        data_file = write_parquet(rows, folder, name)
        # The manifest names the file before the card does, so --overwrite always finds it.
        write_manifest(folder, [*read_manifest(folder), data_file])
        section = render_section(result.summary, failure_examples(result.items, examples), name)
        stale = add_audit(folder, name, data_file, rows, section)
        remove_files(folder, stale)
        write_manifest(folder, [f for f in read_manifest(folder) if f not in stale])
    return data_file
