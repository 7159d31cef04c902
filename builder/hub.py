"""Versioned Hub datasets: one commit per run, then a tag (`v1`, `v2`, ...) that names it.

A version must never be half-written, so the card and exactly the files it lists (its
`self_instruct.files`: the Parquet shards and the figures, each checked against the size and
sha256 the export recorded) go up in ONE `HfApi.create_commit` on one revision; the files the
previous version's card listed and the new one does not are deleted in that same commit, and
nothing else in the repo is touched. Only then is the commit tagged, by its oid (not by branch
name, which a concurrent push could move). `load_dataset(repo_id, config, revision="v1")` then
returns exactly what v1 held, whatever came after.

The token comes from huggingface_hub's usual places (`token=`, `HF_TOKEN`, `hf auth login`) and
is never printed, logged, or written into the commit or the card.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from .history import data_fingerprint, new_entry, read_history, with_history
from .layout import CARD
from .logfile import write_durably
from .version_files import FolderVersion, PushError, owned_files, read_folder

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
_VERSION_TAG = re.compile(r"v(\d+)")
# What git refuses in a branch or tag name (`git check-ref-format`): the Hub names refs by git.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)")


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
    """Upload the card of `folder` and exactly the files it lists in one commit, then tag it."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    folder, branch = Path(folder), revision or "main"
    check_target(repo_id, tag=tag, revision=revision)
    if create_pr and tag:
        raise PushError(f"--tag {tag} with --create-pr: a pull request is not a version yet.")
    version = read_folder(folder)
    api = HfApi(token=token)
    if (token or get_token()) is None:
        raise PushError("No Hugging Face token found: set HF_TOKEN or run `hf auth login`.")
    try:
        head, new_tag = _prepare(api, repo_id, branch, tag, private=private, create_pr=create_pr)
        previous = _card_at(api, repo_id, head)
        card = version.card
        if not create_pr:
            card = _with_version(version, previous, new_tag, repo_id)
            _save_card(folder / CARD, card)
        summary = commit_message or _summary(new_tag, version.rows, version.origin)
        files = {CARD: card.encode("utf-8"), **version.files}
        info = _commit(api, repo_id, branch, files, owned_files(previous), head, summary, create_pr)
        if not create_pr:
            reuse = info.oid == head and tag is None
            new_tag = _tag(api, repo_id, info.oid, new_tag, reuse_existing=reuse, summary=summary)
    except HfHubHTTPError as err:
        raise _refused(err, repo_id) from err
    logger.info("Pushed %s@%s (commit %s)", repo_id, new_tag or info.pr_url, info.oid[:8])
    return PushResult(repo_id, info.oid, branch, new_tag, info.commit_url, info.pr_url)


def _save_card(path: Path, card: str) -> None:
    """The folder's card gets the version history too, replaced whole or not at all."""
    try:
        write_durably(path, card.encode("utf-8"))
    except OSError as err:
        raise PushError(
            f"cannot write {path} ({err.strerror or err}): nothing was pushed and the card is "
            "unchanged; free some space and push again."
        ) from err


def check_target(repo_id: str, *, tag: str | None = None, revision: str | None = None) -> None:
    """Refuse a repo id, tag or branch name that the Hub would refuse (or that names another
    path, like `../../x`) with one message each, before anything is read or sent."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise PushError(
            f"{repo_id!r} is not a Hub repo id: give `namespace/name` (letters, digits, '-', '_' "
            "and '.', no '--' or '..', at most 96 characters), e.g. me/my-data."
        ) from None
    for option, name in (("--tag", tag), ("--revision", revision)):
        if name is not None and not _is_ref_name(name):
            raise PushError(
                f"{option} {name!r} is not a valid tag or branch name (git refuses spaces, "
                "control characters, '..', '~^:?*[\\', and a leading '-', '/' or '.'): "
                "choose another."
            )


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


def _with_version(version: FolderVersion, previous: str | None, tag: str, repo_id: str) -> str:
    """The card carrying the version history (the previous card's, plus this version), its
    loading example naming `repo_id` at `tag`."""
    from .dataset_card.render import with_load_example

    history = read_history(previous)
    data = data_fingerprint(version.data_files)
    if not history or history[-1]["data"] != data:  # an unchanged re-push records nothing
        model = version.origin.get("model")
        history = [*history, new_entry(tag, version.rows, model, data, history)]
    return with_history(with_load_example(version.card, repo_id, tag), history)


def _card_at(api, repo_id: str, commit: str | None) -> str | None:
    from huggingface_hub.errors import EntryNotFoundError

    if commit is None:
        return None
    try:
        path = api.hf_hub_download(repo_id, CARD, repo_type=REPO_TYPE, revision=commit)
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
        raise PushError(
            f"Tag {tag!r} already exists on {repo_id} (commit {tags[tag][:8]}): a version is "
            "never replaced; choose another --tag, or leave it out for the next vN."
        )
    head = next((ref.target_commit for ref in refs.branches if ref.name == branch), None)
    if head is None:
        raise PushError(
            f"Branch {branch!r} does not exist on {repo_id}: a pull request needs an existing "
            "--revision to target (push without --create-pr to create the branch)."
        )
    if tag is None and not create_pr:
        tag = f"v{max(map(_version_number, tags), default=0) + 1}"
    return head, tag


def _commit(api, repo_id, branch, files: dict, owned: set[str], head, summary, create_pr: bool):
    """One commit: add `files` (path in repo -> local path or bytes) and delete the files of the
    previous version (`owned`, from its card) that this one no longer lists; nothing else."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    remote = api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=head)
    stale = [p for p in remote if p in owned and p not in files]
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


def _is_ref_name(name: str) -> bool:
    """What `git check-ref-format` accepts for one branch or tag name (the rules that matter)."""
    edges = not name.startswith(("-", "/", ".")) and not name.endswith(("/", "."))
    return bool(name) and edges and name != "@" and not _BAD_REF.search(name)


def _version_number(tag: str) -> int:
    match = _VERSION_TAG.fullmatch(tag)
    return int(match[1]) if match else 0


def _commit_date(api, repo_id: str, commit: str) -> datetime:
    return api.dataset_info(repo_id, revision=commit).last_modified
