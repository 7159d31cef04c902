"""Read and validate seed tasks in the paper's `seed_tasks.jsonl` schema.

Seeds come from our bundled set, a JSON Lines file, a local dataset folder or a Hub dataset. A
bad seed file is a user's typo, found only after a model is loaded, so every check runs up front
and fails with one message naming the file, the line (1-based) and what to change.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from self_instruct.config import BUNDLED_SEEDS
from self_instruct.layout import CARD, DATA_DIR, SPLIT

if TYPE_CHECKING:
    import datasets

BUNDLED_SEEDS_PATH = Path(__file__).parent / "data" / "seed_tasks.jsonl"

_SCHEMA_HINT = (
    'one JSON object per line: {"id": "seed_task_0", "name": "...", "instruction": "...", '
    '"instances": [{"input": "...", "output": "..."}], "is_classification": false}'
)
DATA_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".arrow")
_FIELD_TYPES = {
    "id": str,
    "name": str,
    "instruction": str,
    "instances": list,
    "is_classification": bool,
}


class SeedFileError(ValueError):
    """A seed source that cannot be used as it is; the message says where and how to fix it."""


@dataclass(frozen=True)
class SeedInstance:
    """One worked example of a seed task; `input` is empty for tasks that need none."""

    input: str
    output: str


@dataclass(frozen=True)
class SeedTask:
    """One human-written task, as in the paper's seed_tasks.jsonl."""

    id: str
    name: str
    instruction: str
    instances: tuple[SeedInstance, ...]
    is_classification: bool


def load_seeds(source: str = BUNDLED_SEEDS) -> list[SeedTask]:
    """Load seed tasks from `'bundled'`, a .jsonl path, a local dataset folder or a Hub dataset id.

    Raises `SeedFileError` on the first problem found, with its location and a fix.
    """
    if source == BUNDLED_SEEDS:
        return _read_jsonl(BUNDLED_SEEDS_PATH)
    path = Path(source)
    if path.is_file() or path.suffix == ".jsonl":
        return _read_jsonl(path)
    if path.is_dir():
        _check_dataset_folder(path)
    return _read_dataset(source)


def prompting_seeds(tasks: list[SeedTask], classification_only: bool) -> list[SeedTask]:
    """The seed tasks a run shows the model: with --classification-only, the classification ones.

    Their fingerprint is part of the run identity, so it must be chosen the same way wherever
    the identity is computed.
    """
    return [s for s in tasks if s.is_classification] if classification_only else tasks


def seeds_fingerprint(seeds: Iterable[SeedTask]) -> str:
    """SHA-256 of a canonical serialisation: two runs on the same seeds record the same value."""
    canonical = json.dumps(
        [asdict(seed) for seed in seeds], sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _read_jsonl(path: Path) -> list[SeedTask]:
    """Parse a JSON Lines seed file; blank lines are skipped, a UTF-8 BOM is tolerated."""
    if not path.is_file():
        raise SeedFileError(f"{path}: seed file not found; check the path given as seeds.")
    text = _decode(path)
    records = [
        (number, _parse_line(line, f"{path} line {number}"))
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not records:
        raise SeedFileError(f"{path}: the file is empty; write {_SCHEMA_HINT}.")
    return _validate(records, lambda number: f"{path} line {number}")


def _decode(path: Path) -> str:
    """Decode as UTF-8, turning a bad byte's offset into the line a user can find in an editor."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SeedFileError(
            f"{path} line {line}: not valid UTF-8 (byte 0x{data[error.start]:02x} at byte offset "
            f"{error.start}); re-save the file with UTF-8 encoding."
        ) from None


def _parse_line(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise SeedFileError(
            f"{where}, column {error.colno}: invalid JSON ({error.msg}); write {_SCHEMA_HINT}."
        ) from None
    except RecursionError:
        raise SeedFileError(
            f"{where}: JSON nested too deeply to read; a seed task is one flat object: "
            f"write {_SCHEMA_HINT}."
        ) from None
    if not isinstance(record, dict):
        raise SeedFileError(
            f"{where}: expected a JSON object, got {type(record).__name__}; write {_SCHEMA_HINT}."
        )
    return record


def _check_dataset_folder(folder: Path) -> None:
    """Refuse a folder that is no dataset before `datasets` walks it.

    Without data files where `datasets` looks first (the folder itself, `data/`, `train/`) or a
    card whose YAML names them, `load_dataset` lists every file below: for a mistyped `/usr`,
    minutes with no output. So look in those three places only, and never deeper.
    """
    if folder.resolve() == Path(folder.resolve().anchor):
        raise SeedFileError(
            f"{folder} is the file system's root, not a seed file: pass a .jsonl file, "
            f"'{BUNDLED_SEEDS}', or a dataset folder."
        )
    try:
        places = [folder, folder / DATA_DIR, folder / SPLIT]
        if any(_has_data_files(place) for place in places) or _card_names_configs(folder):
            return
    except OSError as error:
        raise SeedFileError(f"{folder}: cannot read the folder ({error.strerror}).") from None
    raise SeedFileError(
        f"{folder} is a folder without seed tasks: pass a .jsonl file in the paper's "
        f"seed_tasks.jsonl schema, '{BUNDLED_SEEDS}', or a dataset folder with its data files "
        "(.jsonl, .json, .parquet, .csv) in it, in data/ or named by its README's configs."
    )


def _has_data_files(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return any(entry.name.endswith(DATA_FILE_SUFFIXES) and entry.is_file() for entry in entries)


def _card_names_configs(folder: Path) -> bool:
    """The folder's README.md starts with YAML that has a `configs:` key (a Hub dataset card)."""
    card = folder / CARD
    if not card.is_file():
        return False
    with card.open("rb") as file:
        head = file.read(1 << 20).decode("utf-8", errors="replace")  # 1 MiB: the YAML is on top
    header = head.split("\n---", 1)[0] if head.startswith("---") else ""
    return any(line.startswith("configs:") for line in header.splitlines())


def _read_dataset(source: str) -> list[SeedTask]:
    """Read the train split of a local dataset folder or a Hub dataset with the seed columns."""
    import datasets

    try:
        rows = _load_train_split(source)
    except (OSError, ValueError, LookupError, TypeError, datasets.exceptions.DatasetsError) as err:
        raise SeedFileError(
            f"{source}: cannot load seed tasks ({err}); pass 'bundled', a .jsonl file, a folder "
            "with data files, or a Hub dataset id with a train split."
        ) from None
    records = list(enumerate(rows, start=1))
    if not records:
        raise SeedFileError(f"{source}: the train split has no rows; add at least one seed task.")
    return _validate(records, lambda number: f"{source} row {number}")


def _load_train_split(source: str) -> datasets.Dataset:
    """Load through a throwaway cache for local folders.

    datasets keys a local folder's cache on its card's YAML, so after an edit to the data files
    the shared cache would hand back the old seeds; seed sets are small enough to rebuild.
    """
    import datasets

    if not Path(source).is_dir():
        return datasets.load_dataset(source, split="train")
    with tempfile.TemporaryDirectory() as cache_dir:
        return datasets.load_dataset(
            source, split="train", cache_dir=cache_dir, keep_in_memory=True
        )


def _validate(records: list[tuple[int, dict]], where: Callable[[int], str]) -> list[SeedTask]:
    """Build tasks in order, rejecting the first bad record and any id used twice."""
    first_line: dict[str, int] = {}
    tasks = []
    for number, record in records:
        task = _to_task(record, where(number))
        if task.id in first_line:
            raise SeedFileError(
                f"{where(number)}: duplicate id {task.id!r}, first used on "
                f"{where(first_line[task.id])}; give every task a unique id."
            )
        first_line[task.id] = number
        tasks.append(task)
    return tasks


def _to_task(record: dict, where: str) -> SeedTask:
    for field, expected in _FIELD_TYPES.items():
        _check_field(record, field, expected, where)
    if not record["instruction"].strip():
        raise SeedFileError(f"{where}: 'instruction' is empty; write the task's instruction.")
    if not record["instances"]:
        raise SeedFileError(
            f"{where}: 'instances' is empty; add at least one "
            '{"input": "...", "output": "..."} example.'
        )
    instances = tuple(
        _to_instance(instance, f"{where}, instance {index}")
        for index, instance in enumerate(record["instances"], start=1)
    )
    return SeedTask(
        id=record["id"],
        name=record["name"],
        instruction=record["instruction"],
        instances=instances,
        is_classification=record["is_classification"],
    )


def _to_instance(instance: object, where: str) -> SeedInstance:
    if not isinstance(instance, dict):
        raise SeedFileError(
            f"{where}: expected an object with 'input' and 'output' strings, "
            f"got {type(instance).__name__}."
        )
    for field in ("input", "output"):
        _check_field(instance, field, str, where)
    return SeedInstance(input=instance["input"], output=instance["output"])


def _check_field(record: dict, field: str, expected: type, where: str) -> None:
    if field not in record:
        raise SeedFileError(f"{where}: missing field {field!r}; add it ({_type_name(expected)}).")
    value = record[field]
    if not isinstance(value, expected):
        raise SeedFileError(
            f"{where}: field {field!r} must be {_type_name(expected)}, "
            f"got {type(value).__name__} {value!r:.40}."
        )


def _type_name(expected: type) -> str:
    return {str: "a string", list: "a list", bool: "true or false"}[expected]
