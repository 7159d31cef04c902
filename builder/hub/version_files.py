"""One version as an output folder holds it: the card and exactly the files the card lists.

A push sends nothing else (no glob): after an export killed midway the folder may hold two
exports' files, and only the card says which belong together. The card records each file's size
and sha256 at export (`self_instruct.files`), so a push can refuse a folder whose files are not
what the export wrote, and a later push knows which files of the repo the previous version's
card owns (and may delete) and which belong to someone else.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from self_instruct.export.files import changed
from self_instruct.layout import CARD
from self_instruct.utils.durable import write_durably

_AGAIN = "run the `self-instruct generate` command that wrote it again with --resume"


class PushError(RuntimeError):
    """A push cannot go ahead; the message says why and what to do, never the token."""


@dataclass
class FolderVersion:
    """A version as an output folder holds it, checked against its card."""

    card: str  # the card's text, exactly as checked
    files: dict[str, Path]  # the data files and figures it lists: path in repo -> local path
    data_files: list[str]
    rows: dict[str, int]  # per configuration
    origin: dict  # the card's `self_instruct:` mapping (model, seeds, files)


def read_folder(folder: Path) -> FolderVersion:
    """The card and the files it lists, refused unless whole: the card parses, names its
    configurations, records a size and sha256 for every file it lists, and every file has them.

    Nothing else is ever pushed (no glob): after an export killed midway, the folder may hold
    two exports' files, and only the card says which belong together."""
    import pyarrow.parquet as pq

    if not folder.is_dir():
        raise PushError(f"{folder} is not a folder: give the output folder of a run.")
    text, card = _parse_card(folder / CARD)
    origin = card.get("self_instruct") or {}
    records = origin.get("files") if isinstance(origin, dict) else None
    configs = card.get("configs")
    if (
        not configs
        or not isinstance(configs, list)
        or not all(isinstance(c, dict) for c in configs)
    ):
        raise PushError(f"{folder / CARD} lists no configurations (`configs:`); {_AGAIN}.")
    if not records or not isinstance(records, dict):
        raise PushError(
            f"{folder / CARD} records no file sizes and hashes (`self_instruct.files`), so its "
            f"files cannot be checked; {_AGAIN}."
        )
    shards = {config.get("config_name"): _config_paths(config) for config in configs}
    for name, paths in shards.items():
        if not paths or not all(isinstance(p, str) and p in records for p in paths):
            raise PushError(
                f"{folder / CARD}: configuration {name!r} lists {paths or 'no files'}, not the "
                f"files the card records; {_AGAIN}."
            )
    if problems := changed(folder, records):
        raise PushError(
            f"{folder} does not hold what its card records ({'; '.join(problems)}): an export "
            f"was cut short or a file was changed; {_AGAIN}."
        )
    rows = {
        name: sum(pq.read_metadata(folder / p).num_rows for p in paths)
        for name, paths in shards.items()
    }
    data_files = [p for paths in shards.values() for p in paths]
    files = {path: folder / path for path in records}
    return FolderVersion(text, files, data_files, rows, origin)


def _parse_card(readme: Path) -> tuple[str, dict]:
    """The card's text and YAML header; a missing, undecodable or headless card is refused."""
    import yaml

    if not readme.is_file():
        raise PushError(f"{readme.parent} has no {CARD}: give the output folder of a run.")
    try:
        text = readme.read_text(encoding="utf-8")
        return text, _card_data(text)
    except (ValueError, yaml.YAMLError) as err:
        why = " ".join(str(err).split())
        raise PushError(f"{readme}: the card does not parse ({why}); {_AGAIN}.") from None


def _card_data(text: str) -> dict:
    from huggingface_hub import DatasetCard
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    if not REGEX_YAML_BLOCK.search(text):  # DatasetCard would take it as an empty header
        raise ValueError("no YAML header between --- lines")
    return DatasetCard(text).data.to_dict()


def _config_paths(config: dict) -> list[str]:
    """The files of one `configs:` entry: `data_files` is a path, a list of paths, or a list of
    `{split, path}` whose path is a path or a list of paths."""
    items = config.get("data_files") or []
    items = [items] if isinstance(items, str) else items
    paths: list = []
    for item in items if isinstance(items, list) else []:
        path = item.get("path") if isinstance(item, dict) else item
        paths += path if isinstance(path, list) else [path]
    return paths


def owned_files(card_text: str | None) -> set[str]:
    """The files a pushed card says are its own (none for a card that is not ours)."""
    import yaml

    try:
        card = _card_data(card_text or "")
    except (ValueError, yaml.YAMLError):
        return set()
    origin = card.get("self_instruct")
    files = origin.get("files") if isinstance(origin, dict) else None
    return set(files) if isinstance(files, dict) else set()


@contextlib.contextmanager
def staged(path: Path, data: bytes) -> Iterator[Callable[[], None]]:
    """`data` written beside `path` (`.README.md.push`) before the block: a disk that cannot
    take it fails here, before anything is pushed. The block calls what it gets once the Hub
    holds the version, which renames it over `path`; otherwise `path` stays as it was."""
    beside = path.with_name(f".{path.name}.push")
    try:
        write_durably(beside, data)
    except OSError as err:
        with contextlib.suppress(OSError):
            beside.unlink()
        raise PushError(
            f"cannot write {path} ({err.strerror or err}): nothing was pushed and the card is "
            "unchanged; free some space and push again."
        ) from err
    try:
        yield lambda: _put_in_place(beside, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            beside.unlink()


def _put_in_place(beside: Path, path: Path) -> None:
    """Rename `beside` over `path` (keeping its mode), then sync the folder: whole or not."""
    if path.exists():
        os.chmod(beside, path.stat().st_mode & 0o7777)
    os.replace(beside, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
