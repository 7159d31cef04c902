"""Whole runs for `bench_pipeline.py`: the commands of each run, and their measurement.

A run is a list of `Step`s (commands) run one after the other in a fresh process, so that its
client CPU seconds (user + system of every process it started, waited for) and its peak memory
(the largest one's resident set) are its own, whatever ran before it in the benchmark.

The peers run unchanged, each in its own virtual environment (made with pip on first use), with
the legacy `openai<1` client pointed at our server by `OPENAI_API_BASE`:
- the paper's `bootstrap_instructions.py` -> `identify_clf_or_not.py` -> `generate_instances.py`
  with the arguments of its `scripts/*.sh` (engine "davinci": `generate_instances.py` reads
  `is_clf_or_not_davinci_template_1.jsonl`, whatever engine the classification used);
- Stanford Alpaca's `generate_instruction.py` at its defaults, from a copy of its folder, since it
  reads `./prompt.txt`.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PAPER_REQUIREMENTS = ("openai==0.24.0", "rouge_score", "tqdm", "numpy", "pandas")  # its pin
ALPACA_REQUIREMENTS = ("openai<1", "rouge_score", "fire", "tqdm", "numpy")
PAPER_OUTPUT = "machine_generated_instances.jsonl"


@dataclass
class Step:
    """One command of a run."""

    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Measured:
    wall: float  # seconds
    cpu: float  # seconds, user + system, every process of the run
    peak_mb: float  # the largest process's peak resident set


def _run_steps(steps: list[Step], log: str, connection) -> None:
    """Child process: run the steps in order, then report every descendant's resource usage."""
    with open(log, "a") as out:
        for step in steps:
            out.write(f"$ {' '.join(step.argv)}\n")
            out.flush()
            env = {**os.environ, **step.env}
            done = subprocess.run(step.argv, cwd=step.cwd, env=env, stdout=out, stderr=out)
            if done.returncode:
                connection.send((done.returncode, 0.0, 0))
                return
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    connection.send((0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss))


def measure(steps: list[Step], log: str) -> Measured:
    """Run `steps` in a fresh process; their output goes to `log`, quoted if one fails."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_run_steps, args=(steps, log, child))
    start = time.perf_counter()
    process.start()
    returncode, cpu, max_rss_kb = parent.recv()
    wall = time.perf_counter() - start
    process.join()
    if returncode:
        tail = Path(log).read_text()[-3000:]
        raise RuntimeError(f"a step failed (exit {returncode}); the end of {log}:\n{tail}")
    return Measured(wall, cpu, max_rss_kb / 1024)


def ours(urls: list[str], protocol: str, n: int, options: list[str], out: Path) -> list[Step]:
    """`self-instruct generate`, options by name, as a user runs it."""
    argv = [sys.executable, "-m", "self_instruct.cli", "generate", "--backend", protocol]
    argv += ["--endpoint", *urls, "--num-instructions", str(n), "--output", str(out), *options]
    return [Step(argv, env={"HF_HUB_OFFLINE": "1"})]


def count_ours(out: Path) -> int:
    import pyarrow.parquet as pq

    [path] = (out / "data").glob("instructions-*.parquet")
    return pq.read_metadata(path).num_rows


def peer_env(url: str) -> dict[str, str]:
    """The legacy client reads its server and key from these; no bytecode lands by the code."""
    return {
        "OPENAI_API_BASE": f"{url}/v1",
        "OPENAI_API_KEY": "sk-simulated",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def peer_python(cache_dir: Path, name: str, requirements: tuple[str, ...]) -> str:
    """The python of a peer's own virtual environment, made with pip on first use."""
    venv = cache_dir / f"venv-{name}"
    marker = venv / "bench-requirements.txt"
    if not marker.exists() or marker.read_text() != "\n".join(requirements):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements]
        subprocess.run(pip, check=True)
        marker.write_text("\n".join(requirements))
    return str(venv / "bin" / "python")


def paper(python: str, anchors: Path, work: Path, url: str, n: int, out: Path) -> list[Step]:
    """The paper's three scripts, with the arguments of its scripts/*.sh."""
    code = anchors / "self_instruct" / "code" / "self_instruct"
    seeds = anchors / "self_instruct" / "seed_tasks.jsonl"
    batch = ["--batch_dir", str(out), "--engine", "davinci"]
    bootstrap = ["--num_instructions_to_generate", str(n), "--seed_tasks_path", str(seeds)]
    instances = ["--input_file", "machine_generated_instructions.jsonl"]
    instances += ["--output_file", PAPER_OUTPUT, "--max_instances_to_gen", "5"]
    scripts = [
        ("bootstrap_instructions.py", bootstrap),
        ("identify_clf_or_not.py", ["--request_batch_size", "5"]),
        ("generate_instances.py", [*instances, "--request_batch_size", "5"]),
    ]
    env = peer_env(url)
    return [Step([python, str(code / script), *batch, *more], env=env) for script, more in scripts]


def count_paper(out: Path) -> int:
    return len((out / PAPER_OUTPUT).read_text().splitlines())


def alpaca(python: str, anchors: Path, work: Path, url: str, n: int, out: Path) -> list[Step]:
    """Alpaca's generator at its defaults, from a copy (it reads ./prompt.txt)."""
    code = work / "stanford_alpaca"
    if not code.exists():
        shutil.copytree(anchors / "stanford_alpaca", code)
    argv = [python, "generate_instruction.py", "generate_instruction_following_data"]
    argv += [f"--output_dir={out}", f"--num_instructions_to_generate={n}"]
    return [Step(argv, cwd=str(code), env=peer_env(url))]


def count_alpaca(out: Path) -> int:
    return len(json.loads((out / "regen.json").read_text()))
