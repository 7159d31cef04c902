"""
# Yield of each prompting mode (completion, chat, structured): the same seeds, the same prompts
```bash
python scripts/bench_yield.py                           # ~40 minutes on 2 cores
python scripts/bench_yield.py --targets llama_cpp --rounds 1 --batch-size 4
```

For each target -- (a) `python -m llama_cpp.server` with the embedded SmolLM2-135M-Instruct
GGUF, reached through the `openai` backend, and (b) the in-process `transformers` backend on the
same model -- and each prompting mode, a real pipeline run makes `rounds` rounds of `batch_size`
instruction prompts (same seed, so the same in-context examples in every mode) and is then
stopped. Read from its run log, per mode:

- requests: every request the run sent (instruction lists, classification, instances);
- proposed / kept per instruction request: list items parsed, and those that passed the paper's
  filters and ROUGE-L;
- instances per kept instruction, after the paper's instance filters;
- generated tokens per kept instruction (prompt tokens are in the last column, per request;
  "unknown" where a server answered without counting them);
- not-a-task: kept instructions that `filters.not_a_task` flags (a preamble, an answer, two tasks).

Mode "user-turn" is the baseline: what a chat model got before `--chat` -- the paper's prompts,
each sent as one user message through the model's chat template, read by the paper's parser.

A mode is a set of options (`MODES`); a new one (`--structured`) is one more entry there.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# The options that make each prompting mode.
MODES: dict[str, dict] = {
    "completion": {},
    "chat": {"chat": True},
    "user-turn": {},
    "structured": {"structured": True},
    "chat+structured": {"chat": True, "structured": True},
}
# What a chat model got before --chat: the paper's prompt as one user message, the paper's parser.
AS_USER_TURN = {"user-turn"}
TARGETS = ("llama_cpp", "transformers")
# Rounds in a row that accept nothing before a run stops: the empty rounds past the prompt limit.
PATIENCE = 3


@dataclass
class YieldArguments:
    """What to run; the defaults run the real model for a long while (the header says how long)."""

    targets: list[str] = field(
        default_factory=lambda: list(TARGETS),
        metadata={"help": f"Where completions come from: {', '.join(TARGETS)}.", "nargs": "*"},
    )
    modes: list[str] = field(
        default_factory=lambda: list(MODES),
        metadata={"help": f"Prompting modes to compare: {', '.join(MODES)}.", "nargs": "*"},
    )
    rounds: int = field(default=3, metadata={"help": "Rounds per mode and target."})
    batch_size: int = field(default=4, metadata={"help": "Instruction prompts per round."})
    max_new_tokens: int = field(
        default=256, metadata={"help": "Token limit of an instruction list (short: CPU time)."}
    )
    instance_max_new_tokens: int = field(
        default=200, metadata={"help": "Token limit of an instance completion."}
    )
    seed: int = field(default=42, metadata={"help": "The runs' --seed: the same in every mode."})
    threads: int = field(default=2, metadata={"help": "CPU threads of the server and torch."})


class AsUserTurn:
    """Sends each text prompt to `backend` as one user message (the "user-turn" baseline)."""

    def __init__(self, backend) -> None:
        self.backend = backend

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    async def agenerate(self, prompts, params):
        from self_instruct.backends.base import ChatPrompt, Message

        turns = [ChatPrompt((Message("user", p),)) for p in prompts]
        return await self.backend.agenerate(turns, params)


class PromptLimit:
    """Sends the first `prompts` instruction prompts to `backend` and answers the later ones
    with nothing, at once: their rounds accept nothing and `--patience` ends the run. (Stopping
    at the first prompt past the limit would lose the rounds before it: the scheduler sends
    prompts ahead while earlier rounds still wait for their instances.)"""

    def __init__(self, backend, prompts: int, instruction_tokens: int) -> None:
        self.backend, self.left = backend, prompts
        self.instruction_tokens = instruction_tokens

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    async def agenerate(self, prompts, params):
        from self_instruct.backends.base import Completion

        if params.max_new_tokens != self.instruction_tokens:
            return await self.backend.agenerate(prompts, params)
        sent = min(len(prompts), self.left)
        self.left -= sent
        answers = await self.backend.agenerate(prompts[:sent], params) if sent else []
        return answers + [Completion("", "stop") for _ in prompts[sent:]]


@contextlib.contextmanager
def llama_cpp_server(threads: int) -> Iterator[str]:
    """The embedded GGUF behind `python -m llama_cpp.server` on a free loopback port."""
    import socket

    import httpx2

    from self_instruct.backends.transformers import embedded_gguf_path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path())]
    # llama_cpp.server's own flags, as it spells them:
    command += ["--host", "127.0.0.1", "--port", str(port), "--model_alias", "smollm2"]  # theirs
    command += ["--n_ctx", "4096", "--n_threads", str(threads), "--verbose", "False"]  # theirs
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(f"{url}/v1/models").status_code == 200:
                    break
            if process.poll() is not None:
                raise RuntimeError("llama.cpp server exited at start")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def target_options(target: str, url: str | None) -> dict:
    if target == "llama_cpp":
        return {"backend": "openai", "endpoint": [url], "model": "smollm2", "max_concurrency": 4}
    return {"backend": "transformers", "device": "cpu"}


def run_mode(args: YieldArguments, mode: str, options: dict, run_dir: Path) -> list[dict]:
    """One stopped pipeline run; its run log's records."""
    from self_instruct.backends import load_backend
    from self_instruct.config import PipelineConfig
    from self_instruct.generation.pipeline import Pipeline

    config = PipelineConfig(
        **options,
        **MODES[mode],
        batch_size=args.batch_size,
        num_instructions=10**6,
        patience=PATIENCE,
        max_new_tokens=args.max_new_tokens,
        instance_max_new_tokens=args.instance_max_new_tokens,
        seed=args.seed,
    )
    inner = load_backend(config)
    backend = AsUserTurn(inner) if mode in AS_USER_TURN else inner
    backend = PromptLimit(backend, args.rounds * args.batch_size, args.max_new_tokens)
    for _ in Pipeline(config, run_dir, backend=backend, progress=False):
        pass
    inner.close()
    lines = (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if r.get("round", 0) < args.rounds]  # not the empty rounds


def yield_row(mode: str, records: list[dict], prompts: int) -> list:
    """The table row of one mode from its run log."""
    from self_instruct.prompting.filters import not_a_task

    kept = [r for r in records if r.get("type") == "instruction"]
    rejected = [r for r in records if r.get("type") == "rejected"]
    rounds = [r for r in records if r.get("type") == "round"]
    requests = sum(r.get("requests", 0) for r in rounds)
    generated, prompt_tokens = (
        tokens(rounds, key) for key in ("completion_tokens", "prompt_tokens")
    )
    instances = sum(len(r["instances"]) for r in kept)
    flagged = [r["instruction"] for r in kept if not_a_task(r["instruction"])]
    for text in flagged:
        print(f"  [{mode}] not a task ({not_a_task(text)}): {text[:100]}")
    print(f"  [{mode}] rejected: {dict(Counter(r['reason'] for r in rejected))}")
    return [
        mode,
        requests,
        (len(kept) + len(rejected)) / prompts,
        len(kept) / prompts,
        instances / len(kept) if kept else 0.0,
        per(generated, len(kept), float("nan")),
        len(flagged),
        per(prompt_tokens, requests, 0.0),
    ]


def tokens(rounds: list[dict], key: str) -> int | None:
    """A token count summed over the round markers; None (unknown) once one is: a server that
    answers without `usage` does not count them, and a sum without its rounds would mislead."""
    from self_instruct.backends.base import add_counts

    return functools.reduce(add_counts, (r.get(key, 0) for r in rounds), 0)


def per(count: int | None, n: int, empty: float) -> float | None:
    """`count / n`; `empty` when there is nothing to divide by, None when `count` is unknown."""
    if count is None:
        return None
    return count / n if n else empty


HEADER = [
    "mode",
    "requests",
    "proposed / instruction request",
    "kept / instruction request",
    "instances / kept instruction",
    "generated tokens / kept instruction",
    "kept rows not a task",
    "prompt tokens / request",
]


def table(rows: list[list]) -> str:
    def cell(value) -> str:
        if value is None:
            return "unknown"
        if not isinstance(value, float):
            return str(value)
        return f"{value:.2f}" if value < 10 else f"{value:,.0f}"

    lines = ["| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 1)]
    return "\n".join(lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows])


def bench_target(args: YieldArguments, target: str, url: str | None) -> list[list]:
    rows = []
    for mode in args.modes:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            records = run_mode(args, mode, target_options(target, url), Path(tmp) / "run")
        rows.append(yield_row(mode, records, args.rounds * args.batch_size))
        print(f"  {target} {mode}: {time.perf_counter() - start:.0f}s", flush=True)
    return rows


def main(args: YieldArguments) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    unknown = set(args.modes) - set(MODES) or set(args.targets) - set(TARGETS)
    if unknown:
        sys.exit(f"bench_yield.py: unknown {', '.join(sorted(unknown))}")
    if args.max_new_tokens == args.instance_max_new_tokens:
        sys.exit("bench_yield.py: --max-new-tokens must differ from --instance-max-new-tokens")
    import torch

    torch.set_num_threads(args.threads)
    prompts = args.rounds * args.batch_size
    for target in args.targets:
        server = llama_cpp_server(args.threads) if target == "llama_cpp" else None
        if server is not None and importlib.util.find_spec("llama_cpp") is None:
            sys.exit('bench_yield.py: pip install "llama-cpp-python[server]" for llama_cpp')
        with server or contextlib.nullcontext() as url:
            rows = bench_target(args, target, url)
        print(f"\n## {target}: {prompts} instruction prompts per mode, seed {args.seed}\n")
        print(table(rows) + "\n", flush=True)


def make_parser(prog: str | None = None):
    from transformers import HfArgumentParser

    from self_instruct.cli.args import strict

    return strict(HfArgumentParser)(YieldArguments, prog=prog)


if __name__ == "__main__":
    (arguments,) = make_parser().parse_args_into_dataclasses()
    main(arguments)
