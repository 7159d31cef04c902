"""What `generate` checks in its first seconds, before a model loads or --output is touched.

A model takes a minute to load (minutes for a 7B) and a run hours: a mistyped folder, a missing
token or a dead server must not wait for either. Each check raises an error that names the
option, the value and what to do instead; nothing here creates or deletes a file.
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from self_instruct.cli.resume import has_export, progress, resume_command
from self_instruct.config import PipelineConfig
from self_instruct.errors import ConfigError
from self_instruct.layout import RUN_DIR

PROBES = {"tgi": "/health", "openai": "/v1/models"}  # answered by every server of the protocol
PROBE_TIMEOUT = 10.0  # seconds; a server that is up answers these at once


def check_output(folder: Path, *, resume: bool, overwrite: bool, push_to_hub: str | None) -> None:
    """The folder can be written, and holds what --resume / --overwrite / neither expect; no
    link or file of someone else's is where the run would write (`files.check_folder`)."""
    from self_instruct.errors import OutputFolderError
    from self_instruct.export.files import check_folder

    if resume and overwrite:
        raise ConfigError(
            "--resume continues the run in --output, --overwrite deletes it: not both."
        )
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{folder} is a file, not a folder: choose another --output.")
    _check_writable(folder)
    holds_run = check_folder(folder)
    if resume and not holds_run:
        raise OutputFolderError(
            f"--resume: {folder} holds no run to resume ({folder / RUN_DIR} records none); run "
            "the command without --resume to start one."
        )
    if holds_run and not (resume or overwrite):
        raise OutputFolderError(
            f"{folder} already holds a Self-Instruct run: {progress(folder)}, "
            f"{'exported' if has_export(folder) else 'no export yet'}. Pass --resume to continue "
            f"it with its own options: {resume_command(folder, push_to_hub)}\n"
            "or --overwrite to replace it, or choose an empty --output folder."
        )


def _check_writable(folder: Path) -> None:
    """Prove that `folder`, or the closest folder above it that exists, takes a new file.

    A file that is created and deleted at once is the only proof: `os.access` says yes to root
    on a read-only mount, and nothing is left behind either way.
    """
    from self_instruct.errors import OutputFolderError

    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise OutputFolderError(
            f"cannot write to {folder} ({err.strerror or err}: {existing}): choose another "
            "--output folder."
        ) from None


def check_seeds(config: PipelineConfig) -> None:
    from self_instruct.prompting.seeds import SeedFileError, load_seeds

    try:
        load_seeds(config.seeds)
    except OSError as err:  # what permission bits or a failing disk refuse
        raise SeedFileError(f"{config.seeds}: cannot read the seed file ({err.strerror})") from err


def check_hub(repo_id: str) -> None:
    """A token that the Hub (HF_ENDPOINT) accepts, and may write to `repo_id`'s namespace."""
    import httpx2
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    from self_instruct.hub.errors import timed_out
    from self_instruct.hub.plan import check_target
    from self_instruct.hub.version_files import PushError

    where = f"--push-to-hub {repo_id}"
    check_target(repo_id)  # a repo id the Hub would refuse, or one naming another path
    if "/" not in repo_id:
        raise PushError(f"{where}: give the namespace too, as in your-name/{repo_id}")
    if constants.HF_HUB_OFFLINE:
        raise PushError(f"{where}: HF_HUB_OFFLINE is set, nothing can be pushed; unset it.")
    if (token := get_token()) is None:
        raise PushError(f"{where}: no Hugging Face token: set HF_TOKEN or run `hf auth login`.")
    try:
        me = HfApi(token=token).whoami()
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", "?")
        why = f"{constants.ENDPOINT} rejects the token (HTTP {status})"
        raise PushError(f"{where}: {why}") from None
    except httpx2.TimeoutException as err:
        why = f"{constants.ENDPOINT} did not answer in time ({timed_out(err)})"
        raise PushError(f"{where}: {why}.") from None
    except (OSError, httpx2.HTTPError) as err:  # a refused connection is not an OSError here
        why = str(err) or type(err).__name__
        raise PushError(f"{where}: cannot reach {constants.ENDPOINT} ({why}).") from None
    namespace = repo_id.split("/")[0]
    yours = [me["name"], *(org["name"] for org in me.get("orgs", []))]
    if namespace not in yours:
        raise PushError(
            f"{where}: the token of {me['name']} cannot write to {namespace}/ (it may write to "
            f"{', '.join(n + '/' for n in yours)})."
        )
    if me.get("auth", {}).get("accessToken", {}).get("role") == "read":
        raise PushError(f"{where}: the token of {me['name']} is read-only; use a write token.")


def check_endpoints(config: PipelineConfig) -> list[str]:
    """Valid URLs, and at least one server that answers its protocol's probe; return those that
    answer (a server that is not there would only fail its share of the requests)."""
    if config.backend == "transformers":
        if config.endpoint:
            raise ConfigError(
                "--endpoint is for --backend tgi or openai (inference servers); --backend "
                "transformers runs the model in-process."
            )
        return []
    if not config.endpoint:
        raise ConfigError(f"--backend {config.backend} needs at least one --endpoint URL")
    for url in config.endpoint:
        _check_url(url)
    path = PROBES[config.backend]
    timeout = min(PROBE_TIMEOUT, config.request_timeout)
    with ThreadPoolExecutor(max_workers=min(16, len(config.endpoint))) as pool:
        answers = pool.map(lambda url: _probe(url, _probe_url(url, path), timeout), config.endpoint)
        down = {url: why for url, why in zip(config.endpoint, answers, strict=True) if why}
    if len(down) == len(config.endpoint):
        listed = "; ".join(f"{url} ({why})" for url, why in down.items())
        raise ConfigError(
            f"no --endpoint answers GET {path}: {listed}. Start the server(s) or fix the URL(s)."
        )
    for url, why in down.items():
        print(
            f"warning: --endpoint {url} does not answer ({why}); going on with the others "
            "(add it again on --resume once it is up).",
            file=sys.stderr,
        )
    return [url for url in config.endpoint if url not in down]


def _check_url(url: str) -> None:
    import httpx2

    from self_instruct.backends.urls import check_endpoint_url
    from self_instruct.utils.redaction import redact_url

    check_endpoint_url(url)  # credentials in the URL: refused without repeating them
    try:
        parsed = httpx2.URL(url)
    except httpx2.InvalidURL as err:
        raise ConfigError(f"--endpoint {redact_url(url)}: not a valid URL ({err})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(
            f"--endpoint {redact_url(url)}: give the server's base URL with http:// or https:// "
            f"(as in http://localhost:8080)"
        )


def _probe_url(url: str, path: str) -> str:
    """`path` on the server at `url`; for openai, a base URL ending in /v1 means the same."""
    from self_instruct.backends.openai import completions_url

    if path == PROBES["openai"]:
        return completions_url(url.rstrip("/")).removesuffix("/completions") + "/models"
    return url.rstrip("/") + path


def _probe(url: str, probe: str, timeout: float) -> str | None:
    """Why `url` cannot serve the run, or None when `probe` answers (any status but 401/403).

    Only no answer at all counts against a server: a 503 while the model loads or a 404 from a
    server without this route still says it is there, and requests are retried anyway. A
    rejected key is fatal: every request would be rejected the same way.
    """
    import httpx2

    try:
        response = httpx2.get(probe, headers=_auth(url), timeout=timeout)
    except httpx2.HTTPError as err:
        return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    if response.status_code in (401, 403):
        raise ConfigError(
            f"--endpoint {url}: {probe} refuses our credentials (HTTP {response.status_code}): "
            "set SELF_INSTRUCT_API_KEY to the server's key."
        )
    return None


def _auth(url: str) -> dict[str, str]:
    """The credentials the backend will send: the API key, or the HF token to HF hosts only."""
    import os

    from huggingface_hub import get_token

    from self_instruct.backends.urls import may_receive_hf_token
    from self_instruct.utils.redaction import API_KEY_ENV

    token = os.environ.get(API_KEY_ENV) or (get_token() if may_receive_hf_token(url) else None)
    return {"Authorization": f"Bearer {token}"} if token else {}
