"""Which version a push makes, from what the Hub already holds: its tag and the card's history;
and which names (repo id, tag, branch) a push may use at all.

A push reads the repo's tags and the card at the branch head (`Remote`), then plans one of:

    new        the folder's data is new: the next free vN (or --tag), one more history entry
    unchanged  a tag already holds this data: nothing to commit (--tag only adds a name to it)
    finish     the head holds this data but its tag is missing (a push cut short between its
               commit and its tag, or whose reply was lost): tag it with the name its card gives
    rename     the same, but another push took that name meanwhile: the next free vN, and the
               card's last entry renamed to it

A card on the Hub names only tags the Hub has: a new version on a head whose own version lacks its
tag (a push cut short, or one about to tag it) tags the head with that name first, so the history
it carries on holds no name that is not a tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from self_instruct.hub.card_history import data_fingerprint, new_entry, read_history
from self_instruct.hub.version_files import FolderVersion, PushError

_VERSION_TAG = re.compile(r"v(\d+)")
# What git refuses in a branch or tag name (`git check-ref-format`): the Hub names refs by git.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)")


@dataclass(frozen=True)
class Remote:
    """The repo as a push found it: tags (name -> commit), the branch head, the files and card
    there, and for a tag of the head card's last entry that names another commit, the data
    fingerprint that commit's card records for it (`tagged_data`)."""

    tags: dict[str, str]
    head: str
    files: list[str]
    card: str | None
    tagged_data: dict[str, str | None] = field(default_factory=dict)

    @property
    def history(self) -> list[dict[str, Any]]:
        return read_history(self.card)


@dataclass(frozen=True)
class Plan:
    kind: str  # "new", "unchanged", "finish" or "rename" (see the module's docstring)
    tag: str  # the version's tag: made by this push, or already there ("unchanged")
    history: list[dict[str, Any]]  # the card's version history once this push is done
    alias: str | None = None  # "unchanged" with --tag: a second name for the existing version
    unfinished: str | None = None  # "new" on a head whose own version lacks its tag: tag it first

    @property
    def commits(self) -> bool:
        return self.kind != "unchanged"


def plan_version(remote: Remote, version: FolderVersion, asked: str | None) -> Plan:
    """The plan for pushing `version` onto `remote`, `asked` being --tag (None: the next vN)."""
    if asked in remote.tags:
        raise PushError(
            f"Tag {asked!r} already exists (commit {remote.tags[asked][:8]}): a version is never "
            "replaced; choose another --tag, or leave it out for the next vN."
        )
    history = remote.history
    data = data_fingerprint(version.data_files)
    last = history[-1] if history else {}
    recorded = last.get("tag")
    if last.get("data") != data or not isinstance(recorded, str):
        tag = _free(asked, remote, history) or next_tag(remote, history)
        model = version.origin.get("model")
        entries = [*history, new_entry(tag, version.rows, model, data, history)]
        unfinished = recorded if isinstance(recorded, str) and recorded not in remote.tags else None
        return Plan("new", tag, entries, unfinished=unfinished)
    if _landed(remote, recorded, data):
        return Plan("unchanged", recorded, history, alias=_free(asked, remote, history))
    if recorded not in remote.tags and asked in (None, recorded):
        return Plan("finish", recorded, history)
    tag = _free(asked, remote, history) or next_tag(remote, history)
    return Plan("rename", tag, [*history[:-1], {**last, "tag": tag}])


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


def next_tag(remote: Remote, history: list[dict[str, Any]]) -> str:
    """The next vN after every tag of the repo and every name in the head card's history."""
    return f"v{max(map(version_number, _taken(remote, history)), default=0) + 1}"


def version_number(tag: str) -> int:
    match = _VERSION_TAG.fullmatch(tag)
    return int(match[1]) if match else 0


def _landed(remote: Remote, tag: str | None, data: str) -> bool:
    """The tag `tag` exists and names this data: at the head, or at a commit whose card says so
    (a later commit, someone else's edit, moved the head past it)."""
    if tag not in remote.tags:
        return False
    return remote.tags[tag] == remote.head or remote.tagged_data.get(tag) == data


def _free(asked: str | None, remote: Remote, history: list[dict[str, Any]]) -> str | None:
    if asked is not None and asked in _taken(remote, history):
        raise PushError(
            f"Tag {asked!r} is in the version history of the card on the Hub, though not a tag "
            "yet: another push may be about to tag it. Choose another --tag, or leave it out."
        )
    return asked


def _taken(remote: Remote, history: list[dict[str, Any]]) -> set[str]:
    return set(remote.tags) | {str(entry.get("tag")) for entry in history}


def _is_ref_name(name: str) -> bool:
    """What `git check-ref-format` accepts for one branch or tag name (the rules that matter)."""
    edges = not name.startswith(("-", "/", ".")) and not name.endswith(("/", "."))
    return bool(name) and edges and name != "@" and not _BAD_REF.search(name)
