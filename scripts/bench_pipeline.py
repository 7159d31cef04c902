"""
# Benchmark whole runs, side by side: this project, the paper's code and Stanford Alpaca's
```bash
python scripts/bench_pipeline.py                     # 17 minutes on 2 busy cores
python scripts/bench_pipeline.py --skip-peers --num-instructions 100 --ceiling-sizes 500
```

Every row is a whole run, instructions with their instances, against simulated OpenAI-compatible
servers (`self_instruct.testing.simulated_server`) in a process of their own: 64 concurrent
generations per endpoint, 0.3 s + 10 ms per generated token, token counts drawn from a lognormal
law per kind of prompt (the long tail of real completions). Fresh servers for every row.

- This project through its command line (`self-instruct generate --backend openai`), at its
  defaults and tuned (`--sample-lag` 8 x the slots: more prompts may run ahead of a slow one;
  other options with `--tuned`), on 1 and 4 endpoints.
- The paper's released code and Stanford Alpaca's generator, unchanged, each in its own virtual
  environment under `--cache-dir`, on 1 endpoint (see `bench_runs.py`). Skipped, with a note,
  when the reference data folder (`--anchors`) is absent, or with `--skip-peers`.
- The ceiling: this project tuned against a near-zero-latency server, where only the client's own
  CPU is left: accepted instructions per second, instances included, over the whole command and
  while generating (from the first request's start to the last one's end: no imports, no export).

"slots used" is the servers' busy slot-seconds over capacity x endpoints x wall time; "while
generating" divides by the span from the first generation's start to the last one's end instead
(without the command's start, its imports, and the export after the last answer). Each figure
of the first table also shows its ratio to the first row (ours at defaults, 1 endpoint). Wall
time includes the start of each command (imports: a few seconds) and the export.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import bench_runs
from bench_backends import load, table

REPO = Path(__file__).resolve().parents[1]


def default_anchors() -> str:
    return os.environ.get("SELF_INSTRUCT_ANCHORS", str(REPO.parent / "shared" / "anchors"))


@dataclass
class BenchArguments:
    """What to run; docs/benchmarks.md gives how long the defaults take."""

    num_instructions: int = field(
        default=300,
        metadata={"help": "Instructions asked of every latency-model row."},
    )
    ceiling_sizes: list[int] = field(
        default_factory=lambda: [2000, 10000],
        metadata={"help": "Instructions asked of the near-zero-latency rows.", "nargs": "*"},
    )
    endpoints: list[int] = field(
        default_factory=lambda: [1, 4],
        metadata={"help": "Endpoint counts of this project's rows.", "nargs": "*"},
    )
    protocols: list[str] = field(
        default_factory=lambda: ["openai"],
        metadata={
            "help": "Backends of this project's rows.",
            "nargs": "*",
            "choices": ("openai", "tgi"),
        },
    )
    capacity: int = field(default=64, metadata={"help": "Concurrent generations per endpoint."})
    base_latency: float = field(default=0.3, metadata={"help": "Seconds per generation."})
    token_latency: float = field(default=0.01, metadata={"help": "Seconds per generated token."})
    tuned: str = field(
        default="--max-concurrency {capacity} --sample-lag {lag}",
        metadata={
            "help": "Options of the tuned rows; {capacity} is --capacity, {slots} capacity x "
            "endpoints, {lag} 8 x slots (more prompts ahead of a slow one)."
        },
    )
    skip_peers: bool = field(default=False, metadata={"help": "Skip the paper's and Alpaca's."})
    skip_ceiling: bool = field(default=False, metadata={"help": "Skip the near-zero rows."})
    anchors: str = field(
        default_factory=default_anchors,
        metadata={
            "help": "Reference data folder (default: $SELF_INSTRUCT_ANCHORS, else "
            "../shared/anchors beside the repository)."
        },
    )
    cache_dir: str = field(
        default=str(Path.home() / ".cache" / "self-instruct-bench"),
        metadata={"help": "Where the peers' virtual environments are made, once."},
    )


@dataclass
class Row:
    name: str
    instructions: int  # accepted, with instances
    measured: bench_runs.Measured
    used: float | None  # share of slot-seconds over the whole command; None at near-zero latency
    used_generating: float | None  # the same, from the first generation's start to the last end
    generating: float  # seconds from the first generation's start to the last one's end

    @property
    def per_minute(self) -> float:
        return 60 * self.instructions / self.measured.wall


class Bench:
    """Runs rows against fresh simulated servers and keeps them."""

    def __init__(self, args: BenchArguments, work: Path) -> None:
        self.args, self.work = args, work
        self.rows: list[Row] = []

    def run(self, name: str, endpoints: int, steps, count, near_zero: bool = False) -> Row:
        """One row: `steps(urls, out)` measured, then `count(out)` instructions."""
        from self_instruct.testing.simulated_server import (
            NEAR_ZERO,
            LatencyModel,
            served,
            simulated_servers,
        )

        out, log = self.work / f"run-{len(self.rows)}", self.work / f"run-{len(self.rows)}.log"
        latency = (
            NEAR_ZERO
            if near_zero
            else LatencyModel(self.args.base_latency, self.args.token_latency)
        )
        with simulated_servers(endpoints, latency, self.args.capacity) as urls:
            measured = bench_runs.measure(steps(urls, out), str(log))
            done = served(urls)
        slots = self.args.capacity * endpoints
        used = None if near_zero else done.busy_seconds / (slots * measured.wall)
        generating = None if near_zero else done.busy_seconds / (slots * done.span)
        row = Row(name, count(out), measured, used, generating, done.span)
        self.rows.append(row)
        print(f"{name}: {row.instructions} in {measured.wall:.1f} s ({load()})", file=sys.stderr)
        return row

    def ours(self, protocol: str, endpoints: int, tuned: bool, n: int, near_zero=False) -> Row:
        slots = self.args.capacity * endpoints
        values = {"capacity": self.args.capacity, "slots": slots, "lag": 8 * slots}
        options = self.args.tuned.format(**values).split() if tuned else []
        plural = "s" if endpoints > 1 else ""
        name = f"ours, {protocol}, {'tuned' if tuned else 'defaults'}, {endpoints} endpoint{plural}"

        def steps(urls, out):
            return bench_runs.ours(urls, protocol, n, options, out)

        return self.run(name, endpoints, steps, bench_runs.count_ours, near_zero)

    def peer(self, name: str, venv: str, requirements, make_steps, count, anchors: Path) -> Row:
        python = bench_runs.peer_python(Path(self.args.cache_dir), venv, requirements)
        n = self.args.num_instructions

        def steps(urls, out):
            return make_steps(python, anchors, self.work, urls[0], n, out)

        return self.run(name, 1, steps, count)


def ratio(value: float, base: float) -> str:
    return f"{value:,.1f} ({value / base:.2f}x)"


def latency_table(rows: list[Row]) -> str:
    base = rows[0]
    header = ["run", "instructions", "wall s", "instructions/min", "slots used"]
    header += ["slots used while generating"]
    lines = [
        [
            r.name,
            r.instructions,
            ratio(r.measured.wall, base.measured.wall),
            ratio(r.per_minute, base.per_minute),
            f"{r.used:.1%} ({r.used / base.used:.2f}x)",
            f"{r.used_generating:.1%}",
            ratio(r.measured.cpu, base.measured.cpu),
            ratio(r.measured.peak_mb, base.measured.peak_mb),
        ]
        for r in rows
    ]
    return table([*header, "client CPU s", "peak MB"], lines)


def ceiling_table(rows: list[Row]) -> str:
    """Per row, and between consecutive sizes (which cancels the commands' start-up)."""
    header = ["run", "instructions", "wall s", "instructions/s", "while generating"]
    lines = [
        [r.name, r.instructions, r.measured.wall, r.instructions / r.measured.wall]
        + [r.instructions / r.generating, r.measured.cpu, 1000 * r.measured.cpu / r.instructions]
        + [r.measured.peak_mb]
        for r in rows
    ]
    text = table([*header, "client CPU s", "CPU ms/instruction", "peak MB"], lines)
    for small, big in zip(rows, rows[1:], strict=False):
        extra, seconds = (
            big.instructions - small.instructions,
            big.measured.wall - small.measured.wall,
        )
        if extra > 0 and seconds > 0:  # too small a difference drowns in the machine's noise
            rate = f"{extra / seconds:,.1f} instructions/s"
            text += f"\n\nfrom {small.instructions:,} to {big.instructions:,}: {rate}"
    return text


def main(args: BenchArguments) -> None:
    anchors = Path(args.anchors)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as work:
        bench = Bench(args, Path(work))
        for protocol in args.protocols:
            for endpoints in args.endpoints:
                for tuned in (False, True):
                    bench.ours(protocol, endpoints, tuned, args.num_instructions)
        if args.skip_peers:
            note = "peers skipped (--skip-peers)"
        elif not anchors.is_dir():
            note = f"peers skipped: no reference data at {anchors} (--anchors)"
        else:
            note = f"peers from {anchors}"
            bench.peer(
                "paper's code, 1 endpoint",
                "paper",
                bench_runs.PAPER_REQUIREMENTS,
                bench_runs.paper,
                bench_runs.count_paper,
                anchors,
            )
            bench.peer(
                "Stanford Alpaca, 1 endpoint",
                "alpaca",
                bench_runs.ALPACA_REQUIREMENTS,
                bench_runs.alpaca,
                bench_runs.count_alpaca,
                anchors,
            )
        latency_rows = list(bench.rows)
        ceiling = []
        if not args.skip_ceiling:
            ceiling = [bench.ours("openai", 1, True, n, near_zero=True) for n in args.ceiling_sizes]
    model = f"{args.base_latency} s + {args.token_latency * 1000:g} ms/token"
    print(
        f"## Latency model ({model}, capacity {args.capacity} per endpoint; "
        f"{args.num_instructions} instructions asked; {note}; {load()})\n"
    )
    print(latency_table(latency_rows))
    if ceiling:
        print(f"\n## Near-zero latency: the client's ceiling ({load()})\n")
        print(ceiling_table(ceiling))


def make_parser(prog: str | None = None):
    from transformers import HfArgumentParser

    from self_instruct.cli.args import strict

    return strict(HfArgumentParser)(BenchArguments, prog=prog)


if __name__ == "__main__":
    (arguments,) = make_parser().parse_args_into_dataclasses()
    main(arguments)
