"""
# Benchmark the backends: server throughput under concurrency, in-process generation overhead
```bash
python scripts/bench_backends.py                      # a few minutes on 2 cores
python scripts/bench_backends.py --latency 1.0 --skip-transformers
```

1. Server backends. A `ScriptedApp` from `self_instruct.testing.tgi_server` runs in its own
   process (as a real server would: it must not share the client's interpreter lock) and answers
   every request after a fixed `latency`, at most `capacity` at once. For each `max_concurrency`,
   one `generate()` call of `waves` x `max_concurrency` prompts is timed; the ideal is
   min(max_concurrency, capacity) / latency requests per second. Prompts are the pipeline's
   instruction prompts. A call starts with all its first wave's requests built one after the
   other, and those answers come back together: the first waves take about latency +
   max_concurrency x the client CPU per request (~1 ms), until the requests drift apart. 20 waves
   (the default) measure the steady state of a long run; `--waves 5` shows that start-up too (at
   0.2 s and 64 in flight, about 85% instead of 91-93%).
2. The pipeline. Whole rounds (instructions -> classification -> instances) through the `tgi`
   backend against the same server answering with `self_instruct.testing.scripted_backend`'s
   text. A round waits for each of its three steps, so its ideal also counts the partly filled
   waves.
3. The `transformers` backend on the embedded SmolLM2-135M: tokens/s of
   `TransformersBackend.generate` against a bare `model.generate` on the same batches (greedy, no
   stop strings, identical outputs checked), and the speed-up of batch 8 over batch 1.

Times are wall-clock medians over `repeats`, interleaved; the machine's load is printed with them.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field

SERVER_PROTOCOLS = ("tgi", "openai")


@dataclass
class BenchArguments:
    """What to run; the defaults take a few minutes on 2 CPU cores."""

    latency: float = field(default=0.2, metadata={"help": "Seconds the server holds a request."})
    capacity: int = field(default=64, metadata={"help": "Requests the server serves at once."})
    concurrency: list[int] = field(
        default_factory=lambda: [1, 2, 4, 8, 16, 32, 64],
        metadata={"help": "max_concurrency values for the server table.", "nargs": "*"},
    )
    small_capacity: int = field(
        default=16,
        metadata={"help": "Capacity of the extra row where the server is the bottleneck."},
    )
    waves: int = field(
        default=20, metadata={"help": "Requests per row: this many times max_concurrency."}
    )
    protocols: list[str] = field(
        default_factory=lambda: list(SERVER_PROTOCOLS),
        metadata={"help": "Server backends to measure.", "nargs": "*", "choices": SERVER_PROTOCOLS},
    )
    pipeline_concurrency: list[int] = field(
        default_factory=lambda: [8, 64],
        metadata={"help": "max_concurrency (= batch_size) of the pipeline rows.", "nargs": "*"},
    )
    max_new_tokens: int = field(
        default=32, metadata={"help": "Tokens generated per prompt by the transformers rows."}
    )
    prompts: int = field(default=8, metadata={"help": "Prompts of the transformers rows."})
    prompt_instructions: int = field(
        default=4,
        metadata={"help": "In-context instructions per prompt there (the pipeline's default: 8)."},
    )
    torch_threads: int = field(
        default=1,
        metadata={
            "help": "torch threads for the transformers rows; 0 keeps torch's default (one per "
            "core), which is many times slower than 1 when other processes load the cores."
        },
    )
    repeats: int = field(default=3, metadata={"help": "Measurements per row; the median is kept."})
    skip_server: bool = field(default=False, metadata={"help": "Skip the server and pipeline."})
    skip_transformers: bool = field(default=False, metadata={"help": "Skip the transformers rows."})


def load() -> str:
    """The load average beside each table: other processes skew wall-clock numbers."""
    return "load average {:.1f} {:.1f} {:.1f} on {} cores".format(*os.getloadavg(), os.cpu_count())


class ScriptedModelApp:
    """A `ScriptedApp` (latency, capacity) whose TGI answers are the scripted model's text."""

    def __init__(self, app) -> None:
        from self_instruct.testing.scripted_backend import ScriptedBackend

        self.app = app
        self.model = ScriptedBackend()

    def handle(self, method: str, path: str, body):
        from self_instruct.backends.base import SamplingParams
        from self_instruct.testing.scripted_server import tgi_answer

        reply = self.app.handle(method, path, body)
        if reply.status != 200:
            return reply
        [completion] = self.model.generate([body["inputs"]], SamplingParams(max_new_tokens=1))
        return tgi_answer(completion.text, body["inputs"], body)


def serve(connection, latency: float, capacity: int, scripted: bool) -> None:
    """Child process: serve until the parent says stop."""
    from self_instruct.testing.local_server import LocalServer
    from self_instruct.testing.scripted_server import ScriptedApp

    app = ScriptedApp(latency=latency, capacity=capacity)
    server = LocalServer(ScriptedModelApp(app) if scripted else app)
    with server:
        connection.send(server.url)
        connection.recv()


@contextlib.contextmanager
def running_server(latency: float, capacity: int, scripted: bool = False):
    from self_instruct.testing.local_server import in_child_process

    with in_child_process(serve, latency, capacity, scripted) as url:
        yield url


def server_backend(protocol: str, url: str, max_concurrency: int):
    from self_instruct.backends.openai import OpenAIBackend
    from self_instruct.backends.tgi import TGIBackend

    backend = {"tgi": TGIBackend, "openai": OpenAIBackend}[protocol]
    return backend([url], model="scripted", max_concurrency=max_concurrency)


def time_generate(backend, prompts: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (of this process, every thread) of one `generate()` call."""
    from self_instruct.backends.base import SamplingParams

    start, cpu = time.perf_counter(), time.process_time()
    results = backend.generate(prompts, SamplingParams(max_new_tokens=16))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if None in results:
        raise RuntimeError(f"{results.count(None)} requests failed: the numbers would be wrong")
    return seconds, cpu


def bench_server(args: BenchArguments) -> list[list]:
    """Rows: protocol, max_concurrency, capacity, requests, requests/s, ideal, CPU ms/request."""
    cases = [(c, args.capacity) for c in args.concurrency]
    cases.append((max(args.concurrency), args.small_capacity))
    prompts = instruction_prompts(args.waves * max(args.concurrency), 8)  # the pipeline's length
    rows = []
    for capacity in sorted({capacity for _, capacity in cases}, reverse=True):
        with running_server(args.latency, capacity) as url:
            for protocol in args.protocols:
                for concurrency in [c for c, cap in cases if cap == capacity]:
                    backend = server_backend(protocol, url, concurrency)
                    n = args.waves * concurrency
                    time_generate(backend, [f"warm-up {i}" for i in range(concurrency)])
                    runs = [time_generate(backend, prompts[:n]) for _ in range(args.repeats)]
                    backend.close()
                    seconds, cpu = (statistics.median(values) for values in zip(*runs, strict=True))
                    ideal = min(concurrency, capacity) / args.latency
                    rate = n / seconds
                    cpu_ms = 1000 * cpu / n
                    rows.append(
                        [protocol, concurrency, capacity, n, rate, ideal, rate / ideal, cpu_ms]
                    )
    return rows


class WaveRecorder:
    """Passes the pipeline's batches to a backend; records their sizes and the time they take."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.usage = backend.usage
        self.waves: list[int] = []
        self.seconds = 0.0

    def __getattr__(self, name: str):
        """Everything else (the seed-length check's `prompt_room`, ...) is the backend's."""
        return getattr(self.backend, name)

    def generate(self, prompts, params):
        return self.backend.run(self.agenerate(prompts, params))

    async def agenerate(self, prompts, params):
        """The scheduler's calls: one per request for a server (a wave of 1)."""
        self.waves.append(len(prompts))
        start = time.perf_counter()
        try:
            return await self.backend.agenerate(prompts, params)
        finally:
            self.seconds += time.perf_counter() - start


def pipeline_run(url: str, concurrency: int, run_dir: str) -> tuple[float, WaveRecorder, int]:
    """Rounds of `concurrency` instruction prompts until as many instructions are accepted.

    Returns the seconds, the recorded backend calls (the waves) and the number of rounds.
    """
    from self_instruct.config import PipelineConfig
    from self_instruct.generation.pipeline import Pipeline
    from self_instruct.runlog import read_log, summarize

    config = PipelineConfig(
        backend="tgi",
        endpoint=[url],
        model="scripted",
        max_concurrency=concurrency,
        batch_size=concurrency,
        num_instructions=concurrency,
        patience=3,  # the scripted model's supply of novel instructions is finite
    )
    backend = server_backend("tgi", url, concurrency)
    time_generate(backend, [f"warm-up {i}" for i in range(concurrency)])
    recorder = WaveRecorder(backend)
    start = time.perf_counter()
    list(Pipeline(config, run_dir, backend=recorder, progress=False))
    seconds = time.perf_counter() - start
    backend.close()
    rounds = summarize(read_log(run_dir)).rounds
    return seconds, recorder, rounds


def bench_pipeline(args: BenchArguments) -> list[list]:
    """Rows: max_concurrency, rounds, requests, requests/s, wave-bound ideal, ratio, time in
    backend calls, naive ideal."""
    rows = []
    with running_server(args.latency, args.capacity, scripted=True) as url:
        for concurrency in args.pipeline_concurrency:
            with tempfile.TemporaryDirectory() as run_dir:
                seconds, recorder, rounds = pipeline_run(url, concurrency, run_dir)
            slots = min(concurrency, args.capacity)
            requests = sum(recorder.waves)
            bound = sum(math.ceil(n / slots) for n in recorder.waves) * args.latency
            actual, ideal = requests / seconds, requests / bound
            share = recorder.seconds / seconds
            rows.append(
                [concurrency, rounds, requests, actual, ideal, actual / ideal, share]
                + [slots / args.latency]
            )
    return rows


def instruction_prompts(count: int, instructions: int) -> list[str]:
    """Instruction-generation prompts as the pipeline builds them, from the bundled seeds."""
    from self_instruct.prompting.prompts import load_templates
    from self_instruct.prompting.seeds import load_seeds

    seeds, templates = [seed.instruction for seed in load_seeds()], load_templates()
    rng = random.Random(0)
    return [templates.instruction_prompt(rng.sample(seeds, instructions)) for _ in range(count)]


def bare_generate(lm, tokenizer, prompts: list[str], batch: int, max_new_tokens: int) -> list[str]:
    """`model.generate` as a user would call it, greedy, `batch` prompts at a time."""
    import torch

    texts = []
    for i in range(0, len(prompts), batch):
        enc = tokenizer(prompts[i : i + batch], return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = lm.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        texts += tokenizer.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True)
    return texts


def bench_transformers(args: BenchArguments) -> list[list]:
    """Rows: batch, tokens, pipeline and bare tokens/s, overhead, their seconds (median, range)."""
    from self_instruct.backends.base import SamplingParams
    from self_instruct.backends.transformers import TransformersBackend

    backend = TransformersBackend()
    prompts = instruction_prompts(args.prompts, args.prompt_instructions)
    params = SamplingParams(max_new_tokens=args.max_new_tokens)  # greedy, no stop strings

    def pipeline_step(batch: int):
        backend.batch_size = batch
        return backend.generate(prompts, params)

    def bare(batch: int):
        return bare_generate(backend.lm, backend.tokenizer, prompts, batch, args.max_new_tokens)

    backend.generate(prompts[:2], params)  # warm-up: first-call allocations
    times: dict[tuple[int, str], list[float]] = {}
    outputs: dict[tuple[int, str], list] = {}
    for repeat in range(args.repeats):
        for batch in (1, 8):
            ways = [("pipeline", pipeline_step), ("bare", bare)]
            for way, run in ways[:: 1 if repeat % 2 else -1]:  # alternate who goes first
                start = time.perf_counter()
                outputs[batch, way] = run(batch)
                times.setdefault((batch, way), []).append(time.perf_counter() - start)
    rows = []
    for batch in (1, 8):
        completions = outputs[batch, "pipeline"]
        if [c.text for c in completions] != outputs[batch, "bare"]:
            raise AssertionError(f"batch {batch}: the backend and model.generate differ")
        tokens = sum(c.completion_tokens for c in completions)
        ours, theirs = (tokens / statistics.median(times[batch, w]) for w in ("pipeline", "bare"))
        spread = [spread_of(times[batch, w]) for w in ("pipeline", "bare")]
        rows.append([batch, tokens, ours, theirs, theirs / ours - 1, *spread])
    return rows


def spread_of(seconds: list[float]) -> str:
    """The runs' range around their median: how much the machine's load moved the numbers."""
    return f"{statistics.median(seconds):.1f} ({min(seconds):.1f}-{max(seconds):.1f})"


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; ratios (header ending in %) as percentages, small floats 2 decimals."""

    def cell(value, name: str) -> str:
        if name.endswith("%"):
            return f"{value:.1%}"
        if isinstance(value, float):
            return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    lines += [
        "| " + " | ".join(cell(v, h) for v, h in zip(row, header, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def main(args: BenchArguments) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.skip_server:
        print(f"## Server backends (latency {args.latency}s; {load()})\n")
        header = ["backend", "max_concurrency", "capacity", "requests", "requests/s", "ideal"]
        print(table([*header, "ratio %", "client CPU ms/request"], bench_server(args)))
        print(f"\n## Pipeline rounds, tgi backend (capacity {args.capacity}; {load()})\n")
        header = ["max_concurrency", "rounds", "requests", "requests/s", "wave-bound ideal"]
        header += ["ratio %", "in backend calls %", "min(c, capacity)/latency"]
        print(table(header, bench_pipeline(args)))
    if not args.skip_transformers:
        import torch

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        print(f"\n## transformers backend ({torch.get_num_threads()} torch threads; {load()})\n")
        rows = bench_transformers(args)
        header = ["batch", "tokens", "pipeline tokens/s", "bare generate tokens/s", "overhead %"]
        print(table([*header, "pipeline s (range)", "bare s (range)"], rows))
        print(f"\nbatch 8 over batch 1: {rows[1][2] / rows[0][2]:.2f}x ({load()})")


def make_parser(prog: str | None = None):
    from transformers import HfArgumentParser

    from self_instruct.cli.args import strict

    return strict(HfArgumentParser)(BenchArguments, prog=prog)


if __name__ == "__main__":
    (arguments,) = make_parser().parse_args_into_dataclasses()
    main(arguments)
