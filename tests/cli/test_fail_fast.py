"""`self-instruct generate` reports every mistake that needs no model before the model loads.

Each case runs the real CLI in a subprocess (tests/cli_runs.py) with `SI_TEST_NO_MODEL=1`: loading
any backend fails loudly, so an error that arrives as the check's own message was found first.
Endpoints are real HTTP servers on 127.0.0.1 (self_instruct.testing.tgi_server) or ports nothing
listens on; the Hub is the local test Hub (tests/local_hub). The range of every numeric option,
one case per option and value, runs the CLI's `main` in this process instead, with a backend
loader that fails the test if it is called.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import typing
from dataclasses import fields
from pathlib import Path

import pytest
from cli_runs import data_rows, finished_run_of, launch, run_cli, wait_for_rounds
from local_hub import LocalHub
from script_modules import load_script

from self_instruct.audit.judge import JudgeArguments
from self_instruct.audit.review import AuditConfig
from self_instruct.cli import main
from self_instruct.cli.generate import GenerateArguments
from self_instruct.cli.push import StatsArguments
from self_instruct.config import PipelineConfig, absolute_paths
from self_instruct.hub.push import PushConfig
from self_instruct.prompting.prompts import DEFAULT_TEMPLATES_PATH
from self_instruct.prompting.seeds import BUNDLED_SEEDS_PATH
from self_instruct.testing.local_server import LocalServer, tgi_error
from self_instruct.testing.scripted_server import ScriptedApp
from self_instruct.utils.ranges import RANGE, Range, flag

ARGS = ["generate", "--num-instructions", "6", "--batch-size", "2", "--seed", "5"]
NO_MODEL = {"SI_TEST_NO_MODEL": "1"}
REAL_BACKENDS = {"SI_TEST_REAL_MODEL": "1"}  # the real HTTP backends (they load no model)


def fails_first(args: list[str], message: str, env: dict | None = None) -> str:
    """Run the CLI; expect one error line with `message`, found before any model was loaded."""
    done = run_cli(args, {**NO_MODEL, **(env or {})}, timeout=60)
    assert done.returncode != 0
    assert "MODEL LOADED" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "self-instruct generate: error:" in line]
    assert len(errors) == 1, done.stderr
    assert message in done.stderr, done.stderr
    return done.stderr


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return finished_run_of(ARGS, tmp_path_factory.mktemp("finished"))


def test_output_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("x")
    fails_first([*ARGS, "--output", str(tmp_path / "out")], "is a file, not a folder")


def test_output_that_cannot_be_written(tmp_path):
    """/proc takes no new files, for root too."""
    fails_first([*ARGS, "--output", "/proc/self-instruct-out"], "cannot write to")


def test_output_that_holds_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    fails_first([*ARGS, "--output", str(tmp_path)], "holds other files, not a Self-Instruct run")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_resume_with_nothing_to_resume(tmp_path):
    fails_first([*ARGS, "--output", str(tmp_path / "new"), "--resume"], "holds no run to resume")
    assert not (tmp_path / "new").exists()


def test_resume_with_other_options_before_the_model(finished_run):
    stderr = fails_first(
        [*ARGS, "--seed", "7", "--output", str(finished_run), "--resume"],
        "holds a run made with other options",
    )
    assert "--seed: 5 -> 7" in stderr


def test_resume_and_overwrite_together(finished_run):
    fails_first(["generate", "--output", str(finished_run), "--resume", "--overwrite"], "not both")


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://gpu1:8080", "http://"])
def test_endpoint_that_is_not_an_http_url(tmp_path, url):
    out = tmp_path / "out"
    args = ["generate", "--backend", "openai", "--endpoint", url, "--output", str(out)]
    fails_first(args, f"--endpoint {url}: give the server's base URL with http:// or https://")
    assert not out.exists()


@pytest.mark.parametrize("form", ["repeated", "listed"])
def test_no_endpoint_answers_names_every_endpoint(tmp_path, form):
    """Both spellings of two endpoints keep both; a closed port is reported at once, not retried."""
    one, two = closed_port_url(), closed_port_url()
    urls = ["--endpoint", one, *(["--endpoint"] if form == "repeated" else []), two]
    out = tmp_path / "out"
    stderr = fails_first(
        ["generate", "--backend", "tgi", *urls, "--output", str(out)],
        "no --endpoint answers GET /health",
        REAL_BACKENDS,
    )
    assert one in stderr and two in stderr
    assert not out.exists()


def test_endpoint_that_does_not_answer_is_named_and_the_others_serve(tmp_path):
    """One live server and one closed port: a warning, then the run uses the live one."""
    dead = closed_port_url()

    def reply(prompt: str) -> str:
        """A new task for a list prompt (ends in its next number), "No" for the classifier, an
        instance otherwise."""
        if prompt.endswith("?"):
            return " No"
        if prompt.endswith("."):
            return f" Name the number {len(prompt)} in words, then spell it backwards."
        return "Output: forty-two"

    with LocalServer(ScriptedApp(reply=reply)) as server:
        done = run_cli(
            [*ARGS, "--backend", "openai", "--endpoint", dead, server.url, "--patience", "2"]
            + ["--max-attempts", "2"]
            + ["--output", str(tmp_path / "out")],
            REAL_BACKENDS,
        )
    assert f"warning: --endpoint {dead} does not answer" in done.stderr, done.stderr
    assert server.app.outcomes["ok"] > 0
    assert done.returncode == 0, done.stderr


class NeedsAKey(ScriptedApp):
    def handle(self, method, path, body):
        return tgi_error(401, "Invalid API key", "authentication")


def test_endpoint_that_refuses_the_key_stops_before_the_run(tmp_path):
    out = tmp_path / "out"
    with LocalServer(NeedsAKey()) as server:
        args = ["generate", "--backend", "openai", "--endpoint", server.url, "--output", str(out)]
        fails_first(args, f"{server.url}/v1/models refuses our credentials (HTTP 401)")
    assert not out.exists()


def test_run_that_fails_before_its_first_round_leaves_nothing_behind(tmp_path):
    """The server answers its probe but rejects every request (HTTP 400): the same command then
    fails the same way, not with "already holds a run"."""
    out = tmp_path / "out"
    app = ScriptedApp(faults=lambda prompt, attempt: "400")
    args = [*ARGS, "--backend", "openai", "--output", str(out)]
    with LocalServer(app) as server:
        for _ in range(2):
            done = run_cli([*args, "--endpoint", server.url], REAL_BACKENDS)
            assert done.returncode != 0 and "rejected a request with HTTP 400" in done.stderr
            assert "already holds" not in done.stderr
            assert not out.exists()


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", users={"alice": "token-a"}, patch_clients=False) as hub:
        yield {**hub.env(), "HF_HUB_OFFLINE": "0", "HF_TOKEN": ""}


@pytest.mark.parametrize(
    ("token", "repo", "message"),
    [
        ("", "alice/data", "no Hugging Face token"),
        ("token-wrong", "alice/data", "rejects the token (HTTP 401)"),
        ("token-a", "bob/data", "the token of alice cannot write to bob/"),
        ("token-a", "just-a-name", "give the namespace too"),
    ],
)
def test_push_to_hub_is_checked_before_the_run(tmp_path, hub, token, repo, message):
    out = tmp_path / "out"
    args = [*ARGS, "--output", str(out), "--push-to-hub", repo]
    fails_first(args, message, {**hub, "HF_TOKEN": token})
    assert not out.exists()


def test_push_to_hub_while_offline(tmp_path):
    fails_first([*ARGS, "--output", str(tmp_path), "--push-to-hub", "me/data"], "HF_HUB_OFFLINE")


def test_bare_resume_continues_with_the_stored_options(tmp_path, finished_run):
    """`--output DIR --resume` alone: the run's own options (seed 5, batch 2), not the defaults,
    and a resumable option (the quota) may grow."""
    folder = tmp_path / "out"
    assert run_cli([*ARGS, "--num-instructions", "3", "--output", str(folder)]).returncode == 0
    done = run_cli(["generate", "--output", str(folder), "--resume", "--num-instructions", "6"])
    assert done.returncode == 0, done.stderr
    assert data_rows(folder) == data_rows(finished_run)


def test_retry_options_may_change_on_resume(tmp_path, finished_run):
    folder = tmp_path / "out"
    assert run_cli([*ARGS, "--output", str(folder), "--num-instructions", "3"]).returncode == 0
    again = ["--max-attempts", "2", "--request-timeout", "9", "--num-instructions", "6"]
    done = run_cli([*ARGS, *again, "--output", str(folder), "--resume"])
    assert done.returncode == 0, done.stderr
    assert data_rows(folder) == data_rows(finished_run)


def test_rerun_after_kill_9_says_how_far_and_how_to_resume(tmp_path, finished_run):
    """The original command, rerun after `kill -9`, prints the run's progress and the exact
    command that continues it; that command finishes the run as if it had never stopped."""
    folder = tmp_path / "out"
    process = launch([*ARGS, "--output", str(folder)], {"SI_TEST_DELAY": "0.3"})
    assert wait_for_rounds(folder, 1, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    stderr = fails_first([*ARGS, "--output", str(folder)], "already holds a Self-Instruct run")
    assert "of 6 instructions kept in" in stderr and "no export yet" in stderr
    command = stderr.split("continue it with its own options: ")[1].splitlines()[0]
    assert command == f"self-instruct generate --output {shlex.quote(str(folder))} --resume"
    done = run_cli(shlex.split(command)[1:])
    assert done.returncode == 0, done.stderr
    assert data_rows(folder) == data_rows(finished_run)


def test_a_url_without_http_is_never_retried(caplog):
    """What the check above keeps from the CLI, the backend itself must not retry either."""
    import httpx2

    from self_instruct.backends.base import SamplingParams
    from self_instruct.backends.openai import OpenAIBackend

    backend = OpenAIBackend(["localhost:8080"], model="m")
    with pytest.raises(httpx2.UnsupportedProtocol):
        backend.generate(["Hello"], SamplingParams(max_new_tokens=4))
    backend.close()
    assert "Retrying" not in caplog.text


def test_probe_of_an_openai_v1_base_url():
    from self_instruct.cli.checks import _probe_url

    for url in ("http://h:8000", "http://h:8000/", "http://h:8000/v1"):
        assert _probe_url(url, "/v1/models") == "http://h:8000/v1/models"
    assert _probe_url("http://h:8080/", "/health") == "http://h:8080/health"


def test_resume_of_a_run_without_an_options_file(tmp_path):
    """A run started before options were stored (or through the builder) resumes from what its
    config.json holds: the options that decide the data."""
    from self_instruct.cli.resume import resumed_config
    from self_instruct.runlog.log import RunConfigMismatchError

    (tmp_path / ".self-instruct").mkdir()
    stored = {"seed": 5, "batch_size": 2, "seeds_sha256": "0" * 64}
    (tmp_path / ".self-instruct" / "config.json").write_text(json.dumps(stored))
    config = resumed_config(tmp_path, {"num_instructions": 9})
    assert (config.seed, config.batch_size, config.num_instructions) == (5, 2, 9)
    with pytest.raises(RunConfigMismatchError, match="--batch-size: 2 -> 4"):
        resumed_config(tmp_path, {"batch_size": 4})


# Each command's options, and the positional arguments it needs to get as far as its checks.
COMMANDS = {
    "generate": ((PipelineConfig, GenerateArguments), []),
    "push": ((PushConfig,), ["FOLDER", "me/data"]),
    "stats": ((StatsArguments,), ["DATA"]),
    "audit": ((AuditConfig,), ["FOLDER"]),
}


def numeric_options(options_type: type) -> dict[str, tuple[type, Range | None]]:
    """Every int or float field of a dataclass, found from its annotations: (kind, range)."""
    hints = typing.get_type_hints(options_type)
    return {
        f.name: (kind, f.metadata.get(RANGE))
        for f in fields(options_type)
        for kind in (int, float)
        if hints[f.name] in (kind, kind | None)
    }


def out_of_range(kind: type, allowed: Range) -> list[str]:
    """Values a flag of `kind` within `allowed` must refuse, as typed on a command line."""
    number = int if kind is int else float
    values = [] if allowed.low is None else [allowed.low - (0 if allowed.open_low else 1)]
    values += [] if allowed.high is None else [allowed.high + 1]
    typed = [str(number(v)) for v in values]
    return typed + (["1.5"] if kind is int else ["nan", "inf", "-inf"])


BAD_FLAGS = [
    (command, name, value)
    for command, (options_types, _) in COMMANDS.items()
    for options_type in options_types
    for name, (kind, allowed) in numeric_options(options_type).items()
    for value in out_of_range(kind, allowed or Range())
]


def test_every_numeric_option_declares_its_range():
    """What the CLI checks and --help shows comes from here: an option without one would pass
    anything (the scripts' evaluation options too)."""
    evaluation = load_script("evaluate_model").EvaluationArguments
    types = [t for types, _ in COMMANDS.values() for t in types] + [JudgeArguments, evaluation]
    missing = [
        f"{t.__name__}.{name}"
        for t in types
        for name, (_, allowed) in numeric_options(t).items()
        if allowed is None
    ]
    assert not missing
    assert {name for command, name, _ in BAD_FLAGS if command == "generate"} >= {
        "request_timeout", "max_attempts", "temperature", "top_p", "seed"
    }  # fmt: skip


def refused_before_any_model(argv: list[str], capsys) -> str:
    """Run `self-instruct ARGV` in this process, where loading a backend (a run's model, the
    audit's judge) fails the test; expect an error exit; return its message."""

    def no_model(*args, **kwargs):
        raise AssertionError("MODEL LOADED before the checks that need no model")

    with pytest.raises(SystemExit) as stopped:
        main(argv, load_backend=no_model, load_judge=no_model)
    code = stopped.value.code
    message = code if isinstance(code, str) else capsys.readouterr().err.rstrip("\n")
    assert code not in (0, None) and "Traceback" not in message, message
    return message


@pytest.mark.parametrize(("command", "name", "value"), BAD_FLAGS)
def test_a_number_out_of_range_is_refused_before_any_model(tmp_path, capsys, command, name, value):
    _, positional = COMMANDS[command]
    where = {"FOLDER": str(tmp_path), "DATA": str(tmp_path)}
    argv = [command, *(where.get(a, a) for a in positional), f"{flag(name)}={value}"]  # -inf
    argv += ["--output", str(tmp_path / "out")] if command == "generate" else []
    message = refused_before_any_model(argv, capsys)
    if value == "1.5":  # argparse's own message, as for any value that is not an int
        assert f"argument {flag(name)}: invalid int value: '1.5'" in message, message
    else:
        assert message.startswith(f"self-instruct {command}: error: {flag(name)} must be ")
        assert message.endswith(f", got {value}"), message
    assert not (tmp_path / "out").exists()


def yaml_values(kind: type) -> list[tuple[str, str]]:
    """What a --config YAML can give a numeric option that a command line cannot: (YAML, shown)."""
    wrong = (
        [("1.5", "1.5"), ("true", "True")] if kind is int else [(".nan", "nan"), (".inf", "inf")]
    )
    return [*wrong, ("'fast'", "'fast'")]


BAD_YAML = [
    (name, text, shown)
    for name, (kind, _) in numeric_options(PipelineConfig).items()
    for text, shown in yaml_values(kind)
]


@pytest.mark.parametrize(("name", "text", "shown"), BAD_YAML)
def test_a_config_file_value_of_the_wrong_kind_is_refused(tmp_path, capsys, name, text, shown):
    recipe = tmp_path / "run.yaml"
    recipe.write_text(f"{flag(name)[2:]}: {text}\n")
    argv = ["generate", "--config", str(recipe), "--output", str(tmp_path / "out")]
    message = refused_before_any_model(argv, capsys)
    assert f"error: {flag(name)} must be " in message and f", got {shown}" in message, message


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--request-timeout", "-1", "--request-timeout must be > 0, got -1.0"),
        ("--request-timeout", "nan", "--request-timeout must be a finite number > 0, got nan"),
        ("--temperature", "nan", "--temperature must be a finite number >= 0, got nan"),
        ("--max-attempts", "0", "--max-attempts must be >= 1, got 0"),
    ],
)
def test_the_reported_numbers_fail_first_in_one_line(tmp_path, option, value, message):
    out = tmp_path / "out"
    fails_first([*ARGS, option, value, "--output", str(out)], message)
    assert not out.exists()


def test_a_float_option_takes_an_int():
    """YAML reads `temperature: 1` as an int: a number all the same."""
    assert (PipelineConfig(temperature=1, top_p=1).temperature, AuditConfig("f").seed) == (1, 42)


@pytest.mark.parametrize("option", ["seeds", "prompt_templates"])
def test_a_run_started_with_a_relative_path_resumes_from_another_directory(
    tmp_path, finished_run, option
):
    """Started in a/ with `--seeds seed_tasks.jsonl` (a copy of the bundled seeds), stopped at 3
    instructions, resumed from b/, where no such file is: the stored option names a/'s file, and
    the data is that of the uninterrupted run."""
    source = {"seeds": BUNDLED_SEEDS_PATH, "prompt_templates": DEFAULT_TEMPLATES_PATH}[option]
    first, second, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    first.mkdir()
    second.mkdir()
    shutil.copy(source, first / source.name)
    start = [*ARGS, flag(option), source.name, "--num-instructions", "3", "--output", str(out)]
    assert run_cli(start, cwd=first).returncode == 0
    more = ["generate", "--output", str(out), "--resume", "--num-instructions", "6"]
    done = run_cli(more, cwd=second)
    assert done.returncode == 0, done.stderr
    options = json.loads((out / ".self-instruct" / "options.json").read_text())
    assert options[option] == str(first / source.name)
    assert data_rows(out) == data_rows(finished_run)


def test_only_local_paths_are_made_absolute(tmp_path, monkeypatch):
    """A Hub id, a missing file, our own 'bundled' (even beside a file of that name) and a model
    name sent to a server stay as typed; a judge checkpoint is named by its absolute path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "bundled").write_text("not the seeds")
    options = {"model": "ckpt", "seeds": "bundled", "resume_from": "me/data@v1", "seed": 5}
    options |= {"prompt_templates": "missing.yaml"}
    assert absolute_paths(options, "transformers") == {**options, "model": str(tmp_path / "ckpt")}
    assert absolute_paths(options, "openai") == options
    assert absolute_paths({"resume_from": "ckpt"}, "tgi") == {"resume_from": str(tmp_path / "ckpt")}
    assert AuditConfig("data", model="ckpt").model == str(tmp_path / "ckpt")
