"""The run's one progress display: per request, honest counts, plain lines off a terminal.

The request hook is checked on the real HTTP backend against a local TGI-protocol server (with
retried faults) and on the transformers backend; the display on a pipeline run with the scripted
backend; the CLI's stderr in a subprocess whose stderr is a pipe, as in CI.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections import Counter

import pytest
from cli_runs import run_cli

from self_instruct.backends.base import SamplingParams
from self_instruct.backends.endpoints import RetryPolicy
from self_instruct.backends.tgi import TGIBackend
from self_instruct.config import PipelineConfig
from self_instruct.generation import progress as progress_module
from self_instruct.generation.pipeline import Pipeline
from self_instruct.generation.progress import RunProgress
from self_instruct.run import funnel_from_log
from self_instruct.runlog.log import read_log
from self_instruct.testing.local_server import LocalServer
from self_instruct.testing.scripted_server import ScriptedApp
from self_instruct.utils import verbosity

CURSOR_CODES = re.compile(r"\r|\x1b\[")


class Terminal(io.StringIO):
    """What tqdm writes to a terminal, kept as text."""

    def isatty(self) -> bool:
        return True


class Events:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.in_flight = self.peak = 0

    def __call__(self, event: str, n: int) -> None:
        self.counts[event] += n
        self.in_flight += {"started": n, "retried": -n, "finished": -n}[event]
        self.peak = max(self.peak, self.in_flight)


def test_http_backend_reports_each_request_and_its_retries():
    fail_once = {"p1", "p4"}
    app = ScriptedApp(
        latency=0.05, faults=lambda p, n: "503" if p in fail_once and n == 0 else None
    )
    events = Events()
    with LocalServer(app) as server:
        retry = RetryPolicy(initial_wait=0.01, max_wait=0.02, jitter=0.0)
        backend = TGIBackend([server.url], model="m", max_concurrency=3, retry=retry)
        backend.on_request = events
        prompts = [f"p{i}" for i in range(8)]
        assert all(backend.generate(prompts, SamplingParams(4)))
        backend.close()
    assert events.counts == {"started": 10, "retried": 2, "finished": 8}
    assert events.in_flight == 0 and events.peak == 3  # never more than the slots


def test_transformers_backend_reports_each_batch(tmp_path, monkeypatch):
    from test_device import save_tiny_model

    from self_instruct.backends.transformers import TransformersBackend

    save_tiny_model(tmp_path)
    backend = TransformersBackend(str(tmp_path), batch_size=2, device="cpu")
    seen = []
    backend.on_request = lambda event, n: seen.append((event, n))
    backend.generate(["write a poem", "list one", "list two"], SamplingParams(2))
    assert seen == [("started", 2), ("finished", 2), ("started", 1), ("finished", 1)]


@pytest.fixture
def terminal(monkeypatch):
    """Call it in the test body: pytest sets its own sys.stderr again after fixtures ran."""

    def attach(columns: int = 200) -> Terminal:
        screen = Terminal()
        monkeypatch.setattr(progress_module, "REFRESH_SECONDS", 0.0)  # show every update
        monkeypatch.setattr(progress_module.sys, "stderr", screen)
        monkeypatch.setenv("COLUMNS", str(columns))  # what tqdm and the status lines read
        return screen

    return attach


def test_bar_moves_per_request_and_agrees_with_the_funnel(tmp_path, scripted_backend, terminal):
    config = PipelineConfig(num_instructions=6, batch_size=4)
    pipeline = Pipeline(config, tmp_path / "run", backend=scripted_backend)
    screen = terminal()
    assert len(list(pipeline)) == 6
    screen = screen.getvalue()
    # Each request shows as it finishes, the rest of its call (a round's 4) still in flight.
    for k in range(1, 4):
        assert f"requests: instruction lists {k} ({4 - k} in flight)" in screen
    assert re.search(r"instruction lists \d+, classification \d+ \(\d+ in flight\)", screen)
    assert re.search(r"instances \d+ \(1 in flight\)", screen)
    funnel = funnel_from_log(read_log(tmp_path / "run"), limit=6)["instructions"]
    assert "6/6 kept" in last_line(screen, "Instructions:") and funnel["kept"] == 6
    assert "7/6" not in screen  # never more kept than the quota
    rejected = last_line(screen, "rejected:")
    for reason, n in funnel["rejected"].items():  # beyond_quota included, as the summary says
        assert f"{reason} {n}" in rejected
    assert "beyond_quota" in funnel["rejected"]


def last_line(screen: str, start: str) -> str:
    """The last drawing of the display's line that starts with `start`."""
    return [s.strip() for s in CURSOR_CODES.split(screen) if s.strip().startswith(start)][-1]


def test_every_line_of_the_display_fits_the_terminal(tmp_path, scripted_backend, terminal):
    """A line wider than the terminal wraps, and the next redraw lands on the wrong row; cut at
    the width, no count may be lost either: kept, the rate, every rejection reason."""
    config = PipelineConfig(num_instructions=6, batch_size=4)
    screen = terminal(columns=80)
    assert len(list(Pipeline(config, tmp_path / "run", backend=scripted_backend))) == 6
    drawn = [s for s in re.split(r"\r|\n|\x1b\[[0-9;]*[A-Za-z]", screen.getvalue()) if s]
    assert max(map(len, drawn)) < 80
    assert "6/6 kept" in last_line(screen.getvalue(), "Instructions:")
    assert "instr/min" in last_line(screen.getvalue(), "Instructions:")
    assert "beyond_quota" in last_line(screen.getvalue(), "rejected:")


def test_the_clock_moves_while_no_request_finishes(terminal, monkeypatch):
    """An in-process batch of a CPU model finishes nothing for a minute: the display is redrawn
    meanwhile, so its elapsed time and ETA do not stand still."""
    monkeypatch.setattr(progress_module, "TICK_SECONDS", 0.01)
    screen = terminal()
    with RunProgress(total=5, kept=0) as progress:
        progress.sent("instruction lists", 8)
        drawn = screen.getvalue().count("Instructions:")
        deadline = time.monotonic() + 30
        while screen.getvalue().count("Instructions:") < drawn + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert screen.getvalue().count("Instructions:") >= drawn + 3
    assert "instruction lists 0 (8 in flight)" in last_line(screen.getvalue(), "requests:")


def test_log_lines_go_through_the_bar(tmp_path, terminal, monkeypatch):
    terminal = terminal()
    library = logging.getLogger(verbosity.LIBRARY_LOGGER)
    monkeypatch.setattr(library, "handlers", [])  # the CLI's handler, for this test only
    monkeypatch.setattr(library, "propagate", True)
    verbosity.set_verbosity(logging.WARNING)  # its handler writes to sys.stderr, the terminal
    with RunProgress(total=5, kept=0):
        # A logger of our own: an earlier test's server may have run logging.config, which
        # disables every logger that existed then (self_instruct.backends.http among them).
        logging.getLogger("self_instruct.test_progress").warning("Retrying in 1.0s [2/6]")
    # tqdm.write clears the display's lines first, prints the message at the start of its own
    # line, then redraws the display under it (its lines in any order).
    screen = terminal.getvalue()
    assert re.search(r"(\r|\x1b\[A)WARNING: Retrying in 1\.0s \[2/6\]\n", screen), repr(screen)
    assert "Instructions:" in screen.split("WARNING: Retrying")[1]


def test_quiet_switches_the_bar_off(tmp_path, scripted_backend, terminal, monkeypatch):
    monkeypatch.setattr(verbosity, "_progress_bars", False)
    screen = terminal()
    config = PipelineConfig(num_instructions=3, batch_size=4)
    assert list(Pipeline(config, tmp_path, backend=scripted_backend))
    assert screen.getvalue() == ""


def cli(tmp_path, *extra):
    args = ["generate", "--num-instructions", "6", "--batch-size", "4", "--output", str(tmp_path)]
    done = run_cli([*args, *extra])
    assert done.returncode == 0, done.stderr
    return done


def test_redirected_stderr_gets_plain_lines_and_no_second_bar(tmp_path):
    done = cli(tmp_path / "out")
    assert not CURSOR_CODES.search(done.stderr), done.stderr[-2000:]
    rounds = [line for line in done.stderr.splitlines() if line.startswith("round ")]
    assert rounds and "kept 6/6" in rounds[-1]
    for other in ("Generating train split", "Flattening the indices", "Creating parquet"):
        assert other not in done.stderr
    kept = re.search(r"instructions\s+generated\s+\d+\s+kept\s+(\d+)", done.stdout)
    assert kept and kept[1] == "6"  # the bar's last count is the summary's
    load = f'Load: datasets.load_dataset("{tmp_path / "out"}", "instances")'
    assert f"{load}  (configurations: instructions, instances, sft)" in done.stdout


def test_quiet_and_verbose(tmp_path):
    quiet = cli(tmp_path / "quiet", "--quiet")
    assert quiet.stderr == "" and "Filtering funnel" in quiet.stdout
    verbose = cli(tmp_path / "verbose", "--verbose")
    assert "INFO: Self-Instruct run directory" in verbose.stderr
    assert "run directory" not in cli(tmp_path / "default").stderr


@pytest.mark.slow
def test_redirected_stderr_has_no_cursor_codes_with_the_real_model(tmp_path):
    """Model loading draws transformers' bars (GGUF conversion, weights): not into a log."""
    # Three instructions: the 135M model writes an instance the paper's parser keeps for one.
    options = ["--num-instructions", "3", "--max-new-tokens", "24", "--patience", "2"]
    options += ["--instance-max-new-tokens", "64", "--batch-size", "2", "--output", str(tmp_path)]
    done = run_cli(["generate", *options], env={"SI_TEST_REAL_MODEL": "1"}, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not CURSOR_CODES.search(done.stderr), done.stderr[-2000:]
    assert "round 0:" in done.stderr
