"""
# Peak memory of `self-instruct generate` as the run grows
```bash
python scripts/bench_memory.py                        # 500 vs 5,000 instructions, ~2 min
python scripts/bench_memory.py --sizes 500 5000 20000
```

Each size is one whole `self-instruct generate` command (generation, the three configurations,
Parquet, the card) in a fresh process, with a scripted backend that answers instantly: what is
left is the pipeline's own memory. A run keeps only its ROUGE-L pool in memory (the run log is
streamed from disk), so peak RSS should stay within 1.5x from 500 to 5,000 instructions.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import random
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
TARGET_RATIO = 1.5


@dataclass
class BenchArguments:
    """What to run; the defaults take a couple of minutes on 2 CPU cores."""

    sizes: list[int] = field(
        default_factory=lambda: [500, 5000],
        metadata={
            "help": "Run sizes (--num-instructions); the first is the baseline.",
            "nargs": "*",
        },
    )
    batch_size: int = field(default=32, metadata={"help": "Prompts per round."})


@dataclass
class Row:
    """One measured run."""

    instructions: int
    rows: int  # instances
    rounds: int
    seconds: float
    peak_mib: float


def varied_instructions(prompt: str, rng: random.Random) -> str:
    """A numbered continuation of new, mutually dissimilar instructions plus the usual bait.

    The tests' scripted model draws from ~500 templates, too few for thousands of instructions
    under ROUGE-L <= 0.7; random made-up words give an unbounded supply.
    """

    def word() -> str:
        return "".join(rng.choices(SYLLABLES, k=rng.randint(2, 3)))

    new = [
        f"Explain the {word()} {word()} of {word()} {word()} to a {word()} in {word()} words"
        for _ in range(3)
    ]
    shown = [line.split(". ", 1)[1] for line in prompt.splitlines()[1:] if ". " in line]
    items = [*new, "Too short", rng.choice(shown)]
    return " " + "".join(f"{item}\n{n}. " for n, item in enumerate(items, 10)).rstrip(
        " .0123456789"
    )


def measure(instructions: int, batch_size: int) -> Row:
    """Run one whole generate command in this (fresh) process; return its peak RSS."""
    from self_instruct.cli import main
    from self_instruct.layout import RUN_DIR
    from self_instruct.runlog import read_log, summarize
    from self_instruct.testing.scripted_backend import ScriptedBackend

    class VariedBackend(ScriptedBackend):
        _instructions = staticmethod(varied_instructions)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        args = ["generate", "--num-instructions", str(instructions), "--output", str(out)]
        start = time.perf_counter()
        quiet = io.StringIO()  # progress bars and summary
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            main([*args, "--batch-size", str(batch_size)], load_backend=lambda _: VariedBackend())
        seconds = time.perf_counter() - start
        summary = summarize(read_log(out / RUN_DIR), instructions)  # streamed, as the run does
    return Row(
        instructions=summary.kept,
        rows=summary.instances_kept,
        rounds=summary.rounds,
        seconds=seconds,
        peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    )


def run(args: BenchArguments) -> list[Row]:
    """Each size in its own spawned process, so that each peak is that run's alone."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spawn = multiprocessing.get_context("spawn")
    rows = []
    for size in args.sizes:
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            rows.append(pool.submit(measure, size, args.batch_size).result())
    return rows


def table(rows: list[Row]) -> str:
    base = rows[0].peak_mib
    lines = [
        "| instructions | instances | rounds | seconds | peak RSS (MiB) | vs first |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.instructions:,} | {row.rows:,} | {row.rounds:,} | {row.seconds:.1f} "
            f"| {row.peak_mib:.0f} | {row.peak_mib / base:.2f}x |"
        )
    ratio = rows[-1].peak_mib / base
    verdict = "within" if ratio <= TARGET_RATIO else "ABOVE"
    lines.append(f"\nPeak RSS ratio {ratio:.2f}x: {verdict} the {TARGET_RATIO}x target.")
    return "\n".join(lines)


def make_parser(prog: str | None = None):
    from transformers import HfArgumentParser

    from self_instruct.cli.args import strict

    return strict(HfArgumentParser)(BenchArguments, prog=prog)


def main() -> None:
    (args,) = make_parser().parse_args_into_dataclasses()
    print(table(run(args)))


if __name__ == "__main__":
    main()
