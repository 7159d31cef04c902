"""What a push says when the Hub or the network refuses it: one message, never a traceback.

Each step of a push (reading the repo, the commit, the tag) runs inside `refusals(target, step)`,
which turns every error huggingface_hub or httpx raises (any HTTP status, a missing repo or
branch, a dropped connection, a timeout, offline mode) into one `PushError`: what happened, in the
Hub's own words and naming the commit that moved the branch when another push did; what of this
push landed (nothing before the commit; after it, the commit but not the tag); and the command
that finishes the version, which reads what the Hub holds before it sends anything.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from self_instruct.hub.client import DEFAULT_HUB_TIMEOUT, HUB_TIMEOUT_ENV
from self_instruct.hub.version_files import PushError
from self_instruct.layout import CARD

_SECRET = re.compile(r"(?i)\b(bearer\s+)\S+|\b(hf_)[a-z0-9]{16,}\b")  # a token a reply quotes
_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Target:
    """Where a push goes, for its messages: the client, repo, branch, folder and options."""

    api: Any  # huggingface_hub.HfApi
    repo_id: str
    branch: str
    folder: Path
    tag: str | None = None
    create_pr: bool = False

    def command(self, *, with_tag: bool = True) -> str:
        """The `self-instruct push` that finishes this push."""
        args = ["self-instruct", "push", str(self.folder), self.repo_id]
        args += ["--revision", self.branch] if self.branch != "main" else []
        args += ["--tag", self.tag] if self.tag and with_tag else []
        args += ["--create-pr"] if self.create_pr else []
        return shlex.join(args)

    @property
    def card(self) -> Path:
        return self.folder / CARD

    @property
    def token(self) -> str | None:
        from huggingface_hub import get_token

        return self.api.token or get_token()


@contextlib.contextmanager
def refusals(target: Target, step: str, commit: str | None = None) -> Iterator[None]:
    """Inside: any Hub or network error of `step` ("read", "commit" or "tag" of `commit`) is
    raised again as one PushError (see the module's docstring)."""
    import httpx2
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        yield
    except (httpx2.HTTPError, OfflineModeIsEnabled, LocalEntryNotFoundError) as err:
        raise PushError(_message(err, target, step, commit)) from err


def tag_taken(target: Target, tag: str, commit: str, holder: str) -> PushError:
    """Another push made `tag` (now naming `holder`) after this one chose it and committed."""
    if target.tag is None:
        todo = f"run `{target.command()}` again to tag it as the next version"
    else:
        todo = f"run `{target.command(with_tag=False)} --tag ANOTHER` to tag it"
    return PushError(
        f"Tag {tag!r} was made by another push while this one ran; it names "
        f"{describe_commit(target, holder)}. This push's commit {commit[:8]} is on "
        f"{target.branch} without a tag, and {target.card} is unchanged: {todo}."
    )


def describe_commit(target: Target, revision: str) -> str:
    """`1234abcd ("title" by alice)`, or the short oid alone if the Hub does not say."""
    import httpx2

    try:
        (commit, *_) = target.api.list_repo_commits(
            target.repo_id, repo_type="dataset", revision=revision
        )
    except (httpx2.HTTPError, ValueError):
        return f"commit {revision[:8]}"
    by = f" by {', '.join(commit.authors)}" if commit.authors else ""
    return f'commit {commit.commit_id[:8]} ("{commit.title}"{by})'


def _message(err: BaseException, target: Target, step: str, commit: str | None) -> str:
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if isinstance(err, LocalEntryNotFoundError) and err.__cause__ is not None:
        err = err.__cause__  # a card download: what the Hub or the network said
    status = _status(err)
    refused = isinstance(err, HfHubHTTPError) and status is not None and status < 500
    what, todo = _what(err, target, status)
    if step == "read":
        landed = "Nothing was pushed"
    elif step == "commit":
        landed = "Nothing of this push landed" if refused else "Its commit may have landed or not"
    else:
        tag = "not tagged yet" if refused else "its tag may have landed or not"
        landed = f"Its commit {(commit or '')[:8]} is on {target.branch}, {tag}"
    return f"{what}. {landed}, and {target.card} is unchanged. {todo}"


def _what(err: BaseException, target: Target, status: int | None) -> tuple[str, str]:
    """What happened, and what to do."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo, again = target.repo_id, f"`{target.command()}`"
    finish = f"Run {again} again: it reads what the Hub holds, then finishes this version."
    if isinstance(err, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set, so nothing can reach the Hub", f"Unset it, then run {again}."
    if isinstance(err, httpx2.TimeoutException):
        return f"{constants.ENDPOINT} did not answer in time ({timed_out(err)})", finish
    if isinstance(err, httpx2.TransportError):
        why = _said(err, target.token) or type(err).__name__
        return f"The connection to {constants.ENDPOINT} failed ({why})", finish
    said = f": {text}" if (text := _said(err, target.token)) else ""
    check = f"Check the token (HF_TOKEN or `hf auth login`), then run {again}."
    if status == 401:
        return f"The Hub rejected the token while pushing to {repo} (HTTP 401)", check
    if status == 403:
        return f"The token may not write to {repo} (HTTP 403): check the namespace", check
    if isinstance(err, RepositoryNotFoundError):
        return f"{repo} is not on the Hub, or this token may not see it (HTTP 404)", check
    if isinstance(err, RevisionNotFoundError):
        return f"Branch {target.branch!r} of {repo} is not on the Hub (HTTP 404{said})", finish
    if status == 412:
        head = describe_commit(target, target.branch)
        return (
            f"Another push moved {target.branch} of {repo} while this one ran; it now points to "
            f"{head}",
            f"Run {again} again to push this folder on top of it, as the next version.",
        )
    if status == 429:
        return (
            f"The Hub is limiting this token's requests (HTTP 429{said})",
            f"Wait a few minutes, then run {again}.",
        )
    if status is not None and status >= 500:
        return f"The Hub failed (HTTP {status}{said})", finish
    return f"The Hub refused it (HTTP {status}{said})", finish


def timed_out(err: BaseException) -> str:
    """Which wait ran out, and what sets it."""
    wait = f"{HUB_TIMEOUT_ENV} sets how long to wait, {DEFAULT_HUB_TIMEOUT:g} s by default"
    return f"{type(err).__name__}; {wait}"


def _status(err: BaseException) -> int | None:
    return getattr(getattr(err, "response", None), "status_code", None)


def _said(err: BaseException, token: str | None) -> str:
    """The server's own message (or the error's), on one line, short, with no token in it."""
    text = " ".join((getattr(err, "server_message", None) or str(err)).split())
    if token:
        text = text.replace(token, "***")
    text = _SECRET.sub(lambda m: (m[1] or m[2]) + "***", text).rstrip(".")
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"
