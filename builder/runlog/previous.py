"""Growing a dataset: the rows of an earlier version become the start of a new run.

`--resume-from me/my-data@v1` (or a local output folder) loads that version's `instructions` and
`instances`, turns them back into run-log records, and the pipeline logs them as its first round:
they join the ROUGE-L pool, prompts sample from them, and the new version holds them followed by
what the new run adds.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from self_instruct.runlog.records import Instruction, imported_instruction

_INSTRUCTION_FIELDS = (
    "id",
    "round",
    "instruction",
    "is_classification",
    "max_rouge_l",
    "mean_rouge_l",
    "most_similar",
    "prompt_instructions",
)


class PreviousVersionError(ValueError):
    """The version to grow from cannot be loaded; the message says what was tried."""


def split_source(source: str) -> tuple[str, str | None]:
    """`repo@revision` -> (repo, revision); a local folder is taken whole."""
    if Path(source).exists() or "@" not in source:
        return source, None
    repo, _, revision = source.rpartition("@")
    return repo, revision or None


def load_previous(source: str) -> list[Instruction]:
    """The accepted-instruction records of an earlier version, in its order."""
    import tempfile

    import datasets

    repo, revision = split_source(source)
    # A throwaway cache: for a repo or revision it cannot find, `datasets` falls back to the
    # latest cached copy of the repo, and a dataset must never grow from stale rows.
    with tempfile.TemporaryDirectory(prefix="self-instruct-previous-") as cache_dir:
        try:
            instructions, instances = (
                datasets.load_dataset(
                    repo, name, revision=revision, split="train", cache_dir=cache_dir
                ).to_list()
                for name in ("instructions", "instances")
            )
        except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as err:
            raise PreviousVersionError(
                f"--resume-from {source}: cannot load its 'instructions' and 'instances' ({err})."
                " Give a dataset written by self-instruct: a Hub id with an optional @revision, "
                "or a local output folder."
            ) from err
    return _records(instructions, instances, source)


def _records(instructions, instances, source: str) -> list[Instruction]:
    """Rows back into run-log records: each instruction with its instances."""
    by_instruction: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in instances:
        by_instruction[row["instruction_id"]].append(
            {"input": row["input"], "output": row["output"]}
        )
    return [
        imported_instruction(
            {key: row[key] for key in _INSTRUCTION_FIELDS}, by_instruction[row["id"]], source
        )
        for row in instructions
    ]
