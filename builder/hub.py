"""Versioned Hub datasets: one commit per run, then a tag (`v1`, `v2`, ...) that names it.

A version must never be half-written, so the card, the Parquet shards and the plots of an output
folder go up in ONE `HfApi.create_commit` on one revision; shards that the new card no longer
lists are deleted in that same commit. Only then is the commit tagged, by its oid (not by branch
name, which a concurrent push could move). `load_dataset(repo_id, config, revision="v1")` then
returns exactly what v1 held, whatever came after.

The token comes from huggingface_hub's usual places (`token=`, `HF_TOKEN`, `hf auth login`) and
is never printed, logged, or written into the commit or the card.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from .history import data_fingerprint, new_entry, read_history, with_history

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
PLOTS_DIR = "plots"  # the card's figures (dataset_card.render.PLOTS_DIR)
_VERSION_TAG = re.compile(r"v(\d+)")


@dataclass
class PushConfig:
    """Options of `self-instruct push FOLDER REPO_ID`. No token option: a token on a command line
    lands in shell history, so it comes from `HF_TOKEN` or `hf auth login` only."""

    folder: str = field(metadata={"help": "Output folder of `self-instruct generate`."})
    repo_id: str = field(metadata={"help": "Dataset repo on the Hub, as `namespace/name`."})
    tag: str | None = field(
        default=None, metadata={"help": "Version tag; default: the next free v1, v2, ..."}
    )
    private: bool = field(
        default=False, metadata={"help": "Create the repo private (an existing repo keeps its)."}
    )
    revision: str | None = field(
        default=None, metadata={"help": "Branch to push to (created if missing); default: main."}
    )
    create_pr: bool = field(
        default=False,
        metadata={"help": "Open a pull request instead of committing; nothing is tagged."},
    )
    commit_message: str | None = field(
        default=None, metadata={"help": "Commit title; default: a summary of the run."}
    )


@dataclass
class PushResult:
    repo_id: str
    commit: str
    revision: str
    tag: str | None
    commit_url: str
    pr_url: str | None = None


class Version(NamedTuple):
    tag: str
    commit: str
    date: datetime


class PushError(RuntimeError):
    """The Hub refused a push; the message says why and what to do, never the token."""


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    tag: str | None = None,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> PushResult:
    """Upload `folder` (README.md, data/*.parquet, plots) in one commit, then tag that commit."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    folder, branch = Path(folder), revision or "main"
    if create_pr and tag:
        raise ValueError(f"tag={tag!r} with create_pr=True: a pull request is not a version yet.")
    files, rows, provenance = _collect(folder)
    api = HfApi(token=token)
    if (token or get_token()) is None:
        raise PushError("No Hugging Face token found: set HF_TOKEN or run `hf auth login`.")
    try:
        head, new_tag = _prepare(api, repo_id, branch, tag, private=private, create_pr=create_pr)
        if not create_pr:
            _record_version(api, repo_id, head, folder, files, new_tag, rows, provenance)
        summary = commit_message or _summary(new_tag, rows, provenance)
        info = _commit(api, repo_id, branch, files, head, summary, create_pr=create_pr)
        if not create_pr:
            reuse = info.oid == head and tag is None
            new_tag = _tag(api, repo_id, info.oid, new_tag, reuse_existing=reuse, summary=summary)
    except HfHubHTTPError as err:
        raise _refused(err, repo_id) from err
    logger.info("Pushed %s@%s (commit %s)", repo_id, new_tag or info.pr_url, info.oid[:8])
    return PushResult(repo_id, info.oid, branch, new_tag, info.commit_url, info.pr_url)


def list_versions(repo_id: str, *, token: str | None = None) -> list[Version]:
    """Every tag of the repo with its commit and that commit's date, oldest first."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    versions = [
        Version(ref.name, ref.target_commit, _commit_date(api, repo_id, ref.target_commit))
        for ref in refs.tags
    ]
    return sorted(versions, key=lambda v: (v.date, _version_number(v.tag)))


def push_main(config: PushConfig) -> PushResult:
    """`self-instruct push`: push, then print where the version lives."""
    result = push_folder(
        config.folder,
        config.repo_id,
        tag=config.tag,
        private=config.private,
        revision=config.revision,
        create_pr=config.create_pr,
        commit_message=config.commit_message,
    )
    where = result.pr_url or f"{result.repo_id}@{result.tag} ({result.commit_url})"
    print(f"Pushed {where}")
    return result


def _collect(folder: Path) -> tuple[dict[str, Path], dict[str, int], dict]:
    """The files a version holds (path in repo -> local path), rows per config of the card's
    `configs:`, and the card's `self_instruct:` provenance mapping (model, seeds), if any.

    Checks up front that every Parquet file the card's `configs:` lists is there, so a card can
    never land next to missing data."""
    import pyarrow.parquet as pq
    from huggingface_hub import DatasetCard

    readme = folder / "README.md"
    if not readme.is_file():
        raise ValueError(f"{folder} has no README.md: is it the output folder of a run?")
    paths = [readme, *sorted(folder.glob("data/*.parquet"))]
    paths += sorted(folder.glob("*.png")) + sorted(folder.glob(f"{PLOTS_DIR}/*.png"))
    files = {p.relative_to(folder).as_posix(): p for p in paths}
    rows, card = {}, DatasetCard.load(readme).data
    for config in card.get("configs") or []:
        shards = _config_files(config, files, folder)
        rows[config["config_name"]] = sum(pq.read_metadata(files[p]).num_rows for p in shards)
    return files, rows, card.get("self_instruct") or {}


def _config_files(config: dict, files: dict[str, Path], folder: Path) -> list[str]:
    """The files of one `configs:` entry; its `path` is a file, a glob, or a list of those."""
    patterns = []
    for item in config["data_files"]:
        patterns += [item["path"]] if isinstance(item["path"], str) else item["path"]
    matched = {p: [f for f in files if fnmatch.fnmatchcase(f, p)] for p in patterns}
    if missing := [p for p, found in matched.items() if not found]:
        raise ValueError(f"The card lists {missing} for {config['config_name']!r}: not in {folder}")
    return sorted({f for found in matched.values() for f in found})


def _record_version(api, repo_id, head, folder: Path, files, tag, rows, provenance) -> None:
    """Write the version history (the previous card's, plus this version) into the card, and
    name the repo and tag in its loading example."""
    previous = read_history(_card_at(api, repo_id, head))
    data = data_fingerprint([f for f in files if f.startswith("data/")])
    history = previous
    if not previous or previous[-1]["data"] != data:  # an unchanged re-push records nothing
        history = [*previous, new_entry(tag, rows, provenance.get("model"), data, previous)]
    from .dataset_card.render import with_load_example  # the card's snippet names this version

    readme = folder / "README.md"
    card = with_load_example(readme.read_text(encoding="utf-8"), repo_id, tag)
    readme.write_text(with_history(card, history), encoding="utf-8")


def _card_at(api, repo_id: str, commit: str | None) -> str | None:
    from huggingface_hub.errors import EntryNotFoundError

    if commit is None:
        return None
    try:
        path = api.hf_hub_download(repo_id, "README.md", repo_type=REPO_TYPE, revision=commit)
    except EntryNotFoundError:
        return None
    return Path(path).read_text(encoding="utf-8")


def _prepare(api, repo_id: str, branch: str, tag: str | None, *, private: bool, create_pr: bool):
    """Create repo and branch if needed; return the branch head and the tag to use."""
    api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    if branch != "main" and not create_pr:
        api.create_branch(repo_id, branch=branch, repo_type=REPO_TYPE, exist_ok=True)
    refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    tags = {ref.name: ref.target_commit for ref in refs.tags}
    if tag in tags:
        raise ValueError(f"Tag {tag!r} already exists on {repo_id} (commit {tags[tag][:8]}).")
    head = next((ref.target_commit for ref in refs.branches if ref.name == branch), None)
    if head is None:
        raise ValueError(f"Branch {branch!r} does not exist on {repo_id}.")
    if tag is None and not create_pr:
        tag = f"v{max(map(_version_number, tags), default=0) + 1}"
    return head, tag


def _commit(api, repo_id, branch, files: dict[str, Path], head, summary, *, create_pr: bool):
    """One commit: add every file, delete data and plots of the previous version that are gone."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    remote = api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=head)
    stale = [p for p in remote if _is_version_file(p) and p not in files]
    operations = [CommitOperationDelete(path_in_repo=p) for p in stale]
    operations += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=f) for p, f in files.items()]
    return api.create_commit(
        repo_id,
        operations,
        commit_message=summary,
        repo_type=REPO_TYPE,
        revision=branch,
        create_pr=create_pr,
        parent_commit=None if create_pr else head,
    )


def _tag(api, repo_id: str, commit: str, tag: str, *, reuse_existing: bool, summary: str) -> str:
    """Tag `commit`; with `reuse_existing` (nothing changed, no tag asked for), an existing tag
    of `commit` is the version: a retried push whose commit had landed gets its tag once."""
    if reuse_existing:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
        if existing := [ref.name for ref in refs.tags if ref.target_commit == commit]:
            logger.warning("Nothing changed since %s: no new version.", existing[0])
            return existing[0]
    api.create_tag(repo_id, tag=tag, revision=commit, tag_message=summary, repo_type=REPO_TYPE)
    return tag


def _summary(tag: str | None, rows: dict[str, int], provenance: dict) -> str:
    """The commit title: version, rows per config, and the model and seeds when the card says."""
    counts = ", ".join(f"{n} {config}" for config, n in rows.items()) or "dataset card"
    origin = ", ".join(f"{k} {provenance[k]}" for k in ("model", "seeds") if provenance.get(k))
    return f"Self-Instruct {tag or 'update'}: {counts}" + (f" ({origin})" if origin else "")


def _refused(err: Exception, repo_id: str) -> Exception:
    """A clear error for the refusals users can fix; anything else goes through unchanged."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status == 401:
        return PushError(f"The Hub rejected the token while pushing to {repo_id} (HTTP 401).")
    if status == 403:
        return PushError(f"The token may not write to {repo_id} (HTTP 403): check the namespace.")
    return err


def _is_version_file(path: str) -> bool:
    """What a version consists of; anything else in the repo (.gitattributes, ...) is kept."""
    return bool(re.fullmatch(rf"README\.md|({PLOTS_DIR}/)?[^/]+\.png|data/[^/]+\.parquet", path))


def _version_number(tag: str) -> int:
    match = _VERSION_TAG.fullmatch(tag)
    return int(match[1]) if match else 0


def _commit_date(api, repo_id: str, commit: str) -> datetime:
    return api.dataset_info(repo_id, revision=commit).last_modified
