"""Runs that cannot finish as asked, through the real CLI: a request that fails for good (against
a TGI-protocol server on 127.0.0.1), and a run whose filters accept nothing."""

from __future__ import annotations

import re
import threading

import pytest
from cli_runs import data_file, run_cli
from tgi_schema import request_check

from self_instruct.cli.generate import EXIT_REQUESTS_FAILED
from self_instruct.layout import CONFIG_NAMES, RUN_DIR
from self_instruct.prompting.prompts import load_templates
from self_instruct.runlog.log import read_log
from self_instruct.testing.local_server import LocalServer, Reply, tgi_error
from self_instruct.testing.scripted_backend import ScriptedBackend
from self_instruct.testing.tgi_server import ModelTGIApp

ARGS = ["generate", "--backend", "tgi", "--num-instructions", "10", "--batch-size", "3"]
SERVER = {"SI_TEST_REAL_MODEL": "1"}  # the real tgi backend, not the launcher's stand-in
CLASSIFICATION_PREFIX = load_templates().classification_prefix


class FlakyTGIApp(ModelTGIApp):
    """TGI over the scripted model; with `fail`, the first classification request answers 503.

    Chosen by what it asks, not by arrival order: requests of later rounds are in flight early,
    and one of those may be beyond the quota, never needed. The first classification request is
    round 0's (a round is classified only after every earlier one was filtered), which every
    run needs.
    """

    def __init__(self, fail: bool = False) -> None:
        super().__init__(ScriptedBackend(), check_request=request_check())
        self.fail = fail
        self._lock = threading.Lock()

    def generate(self, request: dict):
        with self._lock:
            failing = self.fail and request["inputs"].startswith(CLASSIFICATION_PREFIX)
            self.fail = self.fail and not failing
        if failing:
            return tgi_error(503, "Model is overloaded", "overloaded")
        return super().generate(request)


def generate(folder, app, *extra):
    with LocalServer(app) as server:
        args = [*ARGS, "--endpoint", server.url, "--max-attempts", "1", *extra]
        return run_cli([*args, "--output", str(folder)], SERVER)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("healthy") / "out"
    done = generate(folder, FlakyTGIApp())
    assert done.returncode == 0, done.stderr
    return folder


def test_failed_request_stops_the_run_and_resume_sends_its_round_again(tmp_path, uninterrupted):
    folder = tmp_path / "out"
    done = generate(folder, FlakyTGIApp(fail=True))
    assert done.returncode == EXIT_REQUESTS_FAILED, done.stderr
    assert "Traceback" not in done.stderr
    found = re.search(r"1 of \d+ requests of round (\d+) failed for good", done.stderr)
    assert found, done.stderr
    assert "To continue: self-instruct generate" in done.stderr
    markers = [r["round"] for r in read_log(folder / RUN_DIR) if r["type"] == "round"]
    assert markers == list(range(int(found[1])))  # the round with the failure is not logged
    assert not (folder / "README.md").exists()

    resumed = generate(folder, FlakyTGIApp(), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for name in CONFIG_NAMES:  # as if the request had never failed
        assert data_file(folder, name).read_bytes() == data_file(uninterrupted, name).read_bytes()


def test_run_that_accepts_nothing_ends_with_a_message(tmp_path):
    folder = tmp_path / "out"
    done = run_cli(
        ["generate", "--batch-size", "2", "--rouge-threshold", "0", "--patience", "2"]
        + ["--output", str(folder)]
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "corresponds to no data" not in done.stderr
    assert "self-instruct generate: error: the run kept no instruction" in done.stderr
    assert "too_similar" in done.stderr and "--rouge-threshold" in done.stderr
    assert not (folder / "README.md").exists()


class DownTGIApp(ModelTGIApp):
    """Up for `generate`'s probe (GET /health), but every request fails: a 500, or the
    connection closed with no answer."""

    def __init__(self, fault: Reply) -> None:
        super().__init__(ScriptedBackend())
        self.fault = fault

    def generate(self, request: dict) -> Reply:
        return self.fault


def test_every_request_failing_before_the_first_round_exits_75_and_resumes(tmp_path, uninterrupted):
    """One request at a time, tried 5 times: the endpoint is down (5 failures in a row) when
    it fails for good, so the run stops as "every endpoint is failing", before any round."""
    folder = tmp_path / "out"
    app = DownTGIApp(tgi_error(500, "CUDA error", "generation"))
    done = generate(folder, app, "--max-concurrency", "1", "--max-attempts", "5")
    assert done.returncode == EXIT_REQUESTS_FAILED, done.stderr
    assert "Traceback" not in done.stderr
    assert "every endpoint" in done.stderr and "HTTP 500" in done.stderr
    assert "0 of 10 instructions kept in 0 rounds" in done.stderr
    assert f"To continue: self-instruct generate --output {folder} --resume" in done.stderr

    resumed = generate(folder, FlakyTGIApp(), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for name in CONFIG_NAMES:
        assert data_file(folder, name).read_bytes() == data_file(uninterrupted, name).read_bytes()


def test_a_server_that_drops_every_connection_exits_75(tmp_path):
    done = generate(tmp_path / "out", DownTGIApp(Reply(drop=True)))
    assert done.returncode == EXIT_REQUESTS_FAILED, done.stderr
    assert "Traceback" not in done.stderr and "failed" in done.stderr
    assert "To continue: self-instruct generate" in done.stderr
