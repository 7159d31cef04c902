"""The streaming scheduler: the data never depends on how many requests are in flight or when
they come back, and slots stay busy across rounds and steps.

Determinism is checked on the whole export (Parquet bytes) with a streaming scripted backend
whose latencies are random, at 1, 8, 64 and 256 requests in flight, and through the real tgi
backend against a TGI-protocol server on 127.0.0.1 with random per-request latency; busy slots
by the order in which that server sees requests start and end.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from cli_runs import data_file

from self_instruct.backends.tgi import TGIBackend
from self_instruct.config import PipelineConfig
from self_instruct.export.folder import prepare_output
from self_instruct.layout import CONFIG_NAMES, RUN_DIR
from self_instruct.prompting.prompts import load_templates
from self_instruct.run import run_to_folder
from self_instruct.runlog.log import read_log
from self_instruct.testing.local_server import LocalServer
from self_instruct.testing.scripted_backend import ScriptedBackend, StreamingScriptedBackend
from self_instruct.testing.tgi_server import ModelTGIApp

TEMPLATES = load_templates()
# A lag that is not a multiple of the round, short enough for prompts to show machine
# instructions within a small run.
OPTIONS = {"num_instructions": 40, "batch_size": 4, "sample_lag": 6, "seed": 3, "patience": 5}


def export(folder, model, **options) -> dict[str, bytes]:
    """Run into `folder` with the backend object `model`; the data files' bytes."""
    config = PipelineConfig(**{**OPTIONS, **options})
    prepare_output(folder, resume=False, overwrite=False)
    run_to_folder(config, folder, command="pytest", backend=model)
    return {name: data_file(folder, name).read_bytes() for name in CONFIG_NAMES}


def logged(folder) -> list[dict]:
    """The log without the round markers, which carry timings."""
    return [r for r in read_log(folder / RUN_DIR) if r["type"] != "round"]


def test_same_bytes_at_1_8_64_and_256_in_flight(tmp_path):
    exports, logs = {}, {}
    for window in (1, 8, 64, 256):
        backend = StreamingScriptedBackend(window, latency_seed=window)
        exports[window] = export(tmp_path / str(window), backend)
        logs[window] = logged(tmp_path / str(window))
        assert backend.peak_in_flight <= window
        assert backend.peak_in_flight > 4 or window == 1  # the requests did overlap
    assert all(exports[w] == exports[1] for w in (8, 64, 256))
    assert all(logs[w] == logs[1] for w in (8, 64, 256))
    accepted = [r for r in logs[1] if r["type"] == "instruction"]
    assert len(accepted) >= OPTIONS["num_instructions"]
    machine = {r["instruction"] for r in accepted}
    shown = {s for r in accepted for s in r["prompt_instructions"]}
    assert shown & machine, "no prompt showed a machine instruction: the lag was not exercised"


def test_in_process_batches_give_the_same_data_on_resume(tmp_path):
    """An in-process backend batches one round's jobs of a step: a run stopped at its quota
    and extended later equals one that asked for more from the start."""
    whole = export(tmp_path / "whole", ScriptedBackend())
    first = tmp_path / "grown"
    export(first, ScriptedBackend(), num_instructions=10)
    config = PipelineConfig(**OPTIONS)
    run_to_folder(config, first, command="pytest", backend=ScriptedBackend())
    assert {name: data_file(first, name).read_bytes() for name in CONFIG_NAMES} == whole


class LatencyTGIApp(ModelTGIApp):
    """TGI over the scripted model; each request waits a random time (or `slow(prompt)`),
    concurrently, and its start and end are recorded in order."""

    def __init__(self, seed: int, slow=lambda prompt: None) -> None:
        super().__init__(ScriptedBackend())
        self._rng, self._slow = random.Random(seed), slow
        self.events: list[tuple[str, str]] = []  # ("start" | "end", prompt)
        self._events_lock = threading.Lock()

    def generate(self, request: dict):
        prompt = request["inputs"]
        with self._events_lock:
            self.events.append(("start", prompt))
            delay = self._slow(prompt) or self._rng.uniform(0, 0.01)
        time.sleep(delay)
        try:
            return super().generate(request)
        finally:
            with self._events_lock:
                self.events.append(("end", prompt))


def tgi_export(folder, app, concurrency: int, **options) -> dict[str, bytes]:
    with LocalServer(app) as server:
        backend = TGIBackend([server.url], model="scripted", max_concurrency=concurrency)
        try:
            opts = {"backend": "tgi", "endpoint": [server.url], **options}
            return export(folder, backend, **opts)
        finally:
            backend.close()


def test_same_bytes_through_the_tgi_backend_whatever_the_concurrency(tmp_path):
    one = tgi_export(tmp_path / "one", LatencyTGIApp(seed=1), concurrency=1)
    many = tgi_export(tmp_path / "many", LatencyTGIApp(seed=2), concurrency=32)
    assert one == many
    assert logged(tmp_path / "one") == logged(tmp_path / "many")


def is_instance_prompt(prompt: str) -> bool:
    kinds = (
        TEMPLATES.instruction_header,
        TEMPLATES.classification_instruction_header,
        TEMPLATES.classification_prefix,
    )
    return not prompt.startswith(kinds)


@pytest.mark.parametrize("lag", [4, 64])
def test_slots_stay_busy_across_rounds(tmp_path, lag):
    """While an instance request is slow, instruction prompts of later rounds are sent."""
    app = LatencyTGIApp(seed=0, slow=lambda p: 0.1 if is_instance_prompt(p) else 0.002)
    tgi_export(tmp_path / "out", app, concurrency=16, sample_lag=lag)
    open_instances: set[str] = set()
    overlapping = 0
    for event, prompt in app.events:
        if is_instance_prompt(prompt):
            (open_instances.add if event == "start" else open_instances.discard)(prompt)
        elif event == "start" and prompt.startswith(TEMPLATES.instruction_header):
            overlapping += bool(open_instances)
    assert overlapping >= 4  # at least a round's worth went out meanwhile


def test_a_slow_prompt_holds_back_the_filter_but_not_the_later_requests(tmp_path):
    """While the first instruction prompt is slow, later prompts' instructions are classified
    (speculatively: the filter has not decided them yet), and the data is that of one request
    at a time (the scripted model repeats itself: some of those the filter then rejects)."""
    slow_prompt: list[str] = []

    def slow(prompt: str) -> float | None:
        if prompt.startswith(TEMPLATES.instruction_header) and not slow_prompt:
            slow_prompt.append(prompt)
            return 0.5
        return None

    app = LatencyTGIApp(seed=3, slow=slow)
    data = tgi_export(tmp_path / "slow", app, concurrency=16)
    answered = app.events.index(("end", slow_prompt[0]))
    early = [
        prompt
        for event, prompt in app.events[:answered]
        if event == "start" and prompt.startswith(TEMPLATES.classification_prefix)
    ]
    assert len(early) >= 4
    assert data == tgi_export(tmp_path / "one", LatencyTGIApp(seed=4), concurrency=1)


def test_prompts_beyond_the_quota_stay_within_a_window(tmp_path):
    """A long lag lets many prompts go before any is filtered; the admission, which expects the
    rate seen so far, still sends only about a window of requests beyond what the run needs."""
    backend = StreamingScriptedBackend(64, latency_seed=5)
    export(tmp_path / "out", backend, sample_lag=256)
    sent = sum(call[0].startswith(TEMPLATES.instruction_header) for call in backend.calls)
    logged_prompts = OPTIONS["batch_size"] * sum(
        r["type"] == "round" for r in read_log(tmp_path / "out" / RUN_DIR)
    )
    # A window is 64 requests, 16 prompts at this model's rate (1.5 kept each); whole rounds of 4.
    assert logged_prompts <= sent <= logged_prompts + 16 + 2 * OPTIONS["batch_size"]


@pytest.mark.parametrize("lag", [0, 1])
def test_a_lag_shorter_than_a_round_still_finishes_in_process(tmp_path, lag):
    """An in-process batch then holds the part of a round the lag lets go, not all of it."""
    from self_instruct.generation.pipeline import Pipeline

    backend = ScriptedBackend()
    config = PipelineConfig(**{**OPTIONS, "num_instructions": 10, "sample_lag": lag})
    assert len(list(Pipeline(config, tmp_path, backend=backend, progress=False))) == 10
    instruction_calls = [c for c in backend.calls if c[0].startswith(TEMPLATES.instruction_header)]
    assert {len(call) for call in instruction_calls} == {lag + 1}
