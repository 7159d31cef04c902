"""Versioned Hub datasets: one commit per run, then a tag (`v1`, `v2`, ...) that names it.

A version must never be half-written, so the card and exactly the files it lists (its
`self_instruct.files`: the Parquet shards and the figures, each checked against the size and
sha256 the export recorded) go up in ONE `HfApi.create_commit` on one revision; the files the
previous version's card listed and the new one does not are deleted in that same commit, and
nothing else in the repo is touched. Only then is the commit tagged, by its oid (not by branch
name, which a concurrent push could move). `load_dataset(repo_id, config, revision="v1")` then
returns exactly what v1 held, whatever came after.

The folder's card says only what the Hub holds: it gets the new history once the commit and its
tag have both landed. A push refused or cut off midway (another push moved the branch, the
connection dropped, the Hub stopped answering: the CLI's timeout, `hub/client.py`) is one
message (`hub/errors.py`) and leaves the card as it was; run again, it reads what the Hub holds
and finishes the version (`hub/plan.py`), never making a second one.

The token comes from huggingface_hub's usual places (`token=`, `HF_TOKEN`, `hf auth login`) and
is never printed, logged, or written into the commit or the card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from self_instruct.export.files import check_no_links
from self_instruct.hub.card_history import read_history, with_history
from self_instruct.hub.errors import Target, refusals, tag_taken
from self_instruct.hub.plan import Plan, Remote, check_target, plan_version, version_number
from self_instruct.hub.version_files import (
    FolderVersion,
    PushError,
    owned_files,
    read_folder,
    staged,
)
from self_instruct.layout import CARD, RUN_DIR
from self_instruct.runlog.lock import locked

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"


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
    """Upload the card of `folder` and exactly the files it lists in one commit, then tag it.

    Under the folder's lock (no run, audit or other push writes it meanwhile). The folder's card
    gets the version history only once the commit and its tag are both on the Hub: a push that
    fails midway leaves the card as it was, and running it again finishes what the Hub lacks.
    Its requests wait as long as huggingface_hub's client lets them: for ever, unless the
    program set a timeout (`self-instruct` does: `hub_client.use_hub_timeout`)."""
    from huggingface_hub import HfApi, get_token

    folder, branch = Path(folder), revision or "main"
    check_target(repo_id, tag=tag, revision=revision)
    if create_pr and tag:
        raise PushError(f"--tag {tag} with --create-pr: a pull request is not a version yet.")
    with locked(folder / RUN_DIR, only_if_exists=True):
        check_no_links(folder)  # the card is replaced in place: never a file a link names
        version = read_folder(folder)
        api = HfApi(token=token)
        if (token or get_token()) is None:
            raise PushError("No Hugging Face token found: set HF_TOKEN or run `hf auth login`.")
        target = Target(api, repo_id, branch, folder, tag, create_pr)
        with refusals(target, "read"):
            remote = _read_remote(api, repo_id, branch, private=private, create_pr=create_pr)
        if create_pr:
            return _open_pr(target, version, remote, commit_message)
        plan = plan_version(remote, version, tag)
        card = _with_version(version, plan, repo_id)
        summary = commit_message or _summary(plan.tag, version.rows, version.origin)
        with staged(folder / CARD, card.encode("utf-8")) as done:
            result = _commit_and_tag(target, plan, card, version, remote, summary)
            done()
    logger.info("Pushed %s@%s (commit %s)", repo_id, result.tag, result.commit[:8])
    return result


def _commit_and_tag(target: Target, plan: Plan, card: str, version, remote: Remote, summary):
    """The version's commit (unless a tag holds it already), then its tag."""
    api, repo_id = target.api, target.repo_id
    if not plan.commits:
        logger.warning("Nothing changed since %s: no new version.", plan.tag)
        commit = remote.tags[plan.tag]
        if plan.alias:
            with refusals(target, "tag", commit):
                _tag(target, commit, plan.alias, summary)
        url = f"{api.endpoint}/datasets/{repo_id}/commit/{commit}"
        return PushResult(repo_id, commit, target.branch, plan.alias or plan.tag, url)
    if plan.unfinished:  # the version at the head, committed by a push that did not tag it
        with refusals(target, "read"):
            _tag(target, remote.head, plan.unfinished, f"Self-Instruct {plan.unfinished}")
    files = {CARD: card.encode("utf-8"), **version.files}
    with refusals(target, "commit"):
        info = _commit(api, target, files, remote, summary)
    with refusals(target, "tag", info.oid):
        _tag(target, info.oid, plan.tag, summary)
    return PushResult(repo_id, info.oid, target.branch, plan.tag, info.commit_url)


def _open_pr(target: Target, version: FolderVersion, remote: Remote, message: str | None):
    """A pull request with the folder's card as it is: it is not a version, so no history."""
    summary = message or _summary(None, version.rows, version.origin)
    files = {CARD: version.card.encode("utf-8"), **version.files}
    with refusals(target, "commit"):
        info = _commit(target.api, target, files, remote, summary)
    logger.info("Opened %s (commit %s)", info.pr_url, info.oid[:8])
    return PushResult(target.repo_id, info.oid, target.branch, None, info.commit_url, info.pr_url)


def list_versions(repo_id: str, *, token: str | None = None) -> list[Version]:
    """Every tag of the repo with its commit and that commit's date, oldest first."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    versions = [
        Version(ref.name, ref.target_commit, _commit_date(api, repo_id, ref.target_commit))
        for ref in refs.tags
    ]
    return sorted(versions, key=lambda v: (v.date, version_number(v.tag)))


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


def _with_version(version: FolderVersion, plan: Plan, repo_id: str) -> str:
    """The card carrying the planned version history, its loading example naming `repo_id` at
    the version's tag."""
    from self_instruct.dataset_card.render import with_load_example

    return with_history(with_load_example(version.card, repo_id, plan.tag), plan.history)


def _read_remote(api, repo_id: str, branch: str, *, private: bool, create_pr: bool) -> Remote:
    """Create repo and branch if needed; read the tags, the branch head and the card there."""
    api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    if branch != "main" and not create_pr:
        api.create_branch(repo_id, branch=branch, repo_type=REPO_TYPE, exist_ok=True)
    refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    tags = {ref.name: ref.target_commit for ref in refs.tags}
    head = next((ref.target_commit for ref in refs.branches if ref.name == branch), None)
    if head is None:
        raise PushError(
            f"Branch {branch!r} does not exist on {repo_id}: a pull request needs an existing "
            "--revision to target (push without --create-pr to create the branch)."
        )
    files = api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=head)
    card = _card_at(api, repo_id, head) if CARD in files else None
    remote = Remote(tags, head, files, card)
    last = remote.history[-1].get("tag") if remote.history else None
    if last in tags and tags[last] != head:  # did a later commit move the head past it?
        tagged = read_history(_card_at(api, repo_id, tags[last]))
        data = next((e.get("data") for e in tagged if e.get("tag") == last), None)
        remote = Remote(tags, head, files, card, {last: data})
    return remote


def _card_at(api, repo_id: str, commit: str) -> str | None:
    """The card at `commit`; None only if the Hub says there is none (a download that fails
    raises: a card we could not read is never taken for a repo without one)."""
    from huggingface_hub.errors import RemoteEntryNotFoundError

    try:
        path = api.hf_hub_download(repo_id, CARD, repo_type=REPO_TYPE, revision=commit)
    except RemoteEntryNotFoundError:
        return None
    return Path(path).read_text(encoding="utf-8")


def _commit(api, target: Target, files: dict, remote: Remote, summary: str):
    """One commit on the head the push read: add `files` (path in repo -> local path or bytes)
    and delete the files of the previous version (from its card) that this one no longer
    lists; nothing else. A head moved meanwhile makes the Hub refuse it whole (HTTP 412)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    owned = owned_files(remote.card)
    stale = [p for p in remote.files if p in owned and p not in files]
    operations = [CommitOperationDelete(path_in_repo=p) for p in stale]
    operations += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=f) for p, f in files.items()]
    return api.create_commit(
        target.repo_id,
        operations,
        commit_message=summary,
        repo_type=REPO_TYPE,
        revision=target.branch,
        create_pr=target.create_pr,
        parent_commit=None if target.create_pr else remote.head,
    )


def _tag(target: Target, commit: str, tag: str, summary: str) -> None:
    """Tag `commit`. If another push made the tag meanwhile: fine when it names the same
    commit (a twin push of this very version), refused with who has it otherwise."""
    from huggingface_hub.errors import HfHubHTTPError

    api, repo_id = target.api, target.repo_id
    try:
        api.create_tag(repo_id, tag=tag, revision=commit, tag_message=summary, repo_type=REPO_TYPE)
    except HfHubHTTPError as err:
        if getattr(err.response, "status_code", None) != 409:
            raise
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
        holder = next((ref.target_commit for ref in refs.tags if ref.name == tag), None)
        if holder is None:  # a conflict the Hub does not show in the refs: its own words
            raise
        if holder != commit:
            raise tag_taken(target, tag, commit, holder) from None


def _summary(tag: str | None, rows: dict[str, int], provenance: dict) -> str:
    """The commit title: version, rows per config, and the model and seeds when the card says."""
    counts = ", ".join(f"{n} {config}" for config, n in rows.items()) or "dataset card"
    origin = ", ".join(f"{k} {provenance[k]}" for k in ("model", "seeds") if provenance.get(k))
    return f"Self-Instruct {tag or 'update'}: {counts}" + (f" ({origin})" if origin else "")


def _commit_date(api, repo_id: str, commit: str) -> datetime:
    return api.dataset_info(repo_id, revision=commit).last_modified
