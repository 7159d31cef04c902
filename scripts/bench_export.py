"""
# Time to export a finished run, and how often the export reads its run log
```bash
python scripts/bench_export.py                      # 20,000 instructions, ~2 min on 2 cores
python scripts/bench_export.py --sizes 2000 20000
```

Each size writes a finished run log of that many accepted instructions (3 instances each, 2
rejections per acceptance, 20 acceptances a round; made-up words, no model), then exports it in
a fresh process exactly as `self-instruct generate` does on a finished run (`run_to_folder`:
replay, the three configurations, Parquet, the card). It reports the CPU seconds to write the log,
the seconds to export it (and, of those, the card's: its statistics, plots and, with the
`analysis` extra, spaCy's verb-noun parse), and the full passes the export made over the log.
"""

from __future__ import annotations

import builtins
import io
import multiprocessing
import os
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
PER_ROUND = 20


@dataclass
class BenchArguments:
    """What to run."""

    sizes: list[int] = field(
        default_factory=lambda: [20000],
        metadata={"help": "Instructions in the finished run log.", "nargs": "*"},
    )


@dataclass
class Row:
    instructions: int
    log_mib: float
    write_seconds: float
    export_seconds: float
    card_seconds: float
    passes: int  # full reads of log.jsonl during the export


def _words(rng: random.Random, count: int) -> str:
    return " ".join("".join(rng.choices(SYLLABLES, k=rng.randint(2, 3))) for _ in range(count))


def _round(rng: random.Random, round_: int) -> list[dict]:
    records: list[dict] = []
    for k in range(PER_ROUND):
        text = f"Explain {_words(rng, 8)}."
        records.append(
            {
                "type": "instruction",
                "id": f"r{round_:05d}-{k:02d}",
                "round": round_,
                "instruction": text,
                "max_rouge_l": 0.3,
                "mean_rouge_l": 0.1,
                "most_similar": [{"instruction": _words(rng, 8), "rouge_l": 0.3}] * 10,
                "prompt_instructions": [_words(rng, 10) for _ in range(8)],
                "is_classification": False,
                "instances": [{"input": _words(rng, 12), "output": _words(rng, 30)}] * 3,
                "rejected_instances": [],
            }
        )
        for reason in ("too_short", "too_similar"):
            records.append({"type": "rejected", "round": round_, "text": text, "reason": reason})
    return records


def write_log(folder: Path, instructions: int):
    """A finished run of `instructions` in `folder`; its options and the seconds it took."""
    from self_instruct.config import PipelineConfig
    from self_instruct.generation.pipeline import Pipeline
    from self_instruct.layout import RUN_DIR

    config = PipelineConfig(num_instructions=instructions)
    log = Pipeline(config, folder / RUN_DIR, progress=False).log
    rng = random.Random(0)
    start = time.process_time()
    log.open()
    for round_ in range(-(-instructions // PER_ROUND)):
        marker = {"round": round_, "accepted": PER_ROUND, "rejected": 2 * PER_ROUND}
        log.append_round(_round(rng, round_), {**marker, "requests": 8, "seconds": 1.0})
    log.close()
    return config, time.process_time() - start


def measure(instructions: int) -> Row:
    """Write, then export, in this (fresh) process; count the export's passes over the log:
    every opening of the log file for reading, whichever code makes it."""
    from self_instruct import dataset_card
    from self_instruct.layout import LOG_FILE, RUN_DIR
    from self_instruct.run import run_to_folder

    passes, card_seconds = 0, 0.0
    real_open, render_card = io.open, dataset_card.render_card

    def counted(file, mode="r", *args, **kwargs):
        nonlocal passes
        is_path = isinstance(file, str | bytes | os.PathLike)
        passes += is_path and "r" in mode and Path(os.fsdecode(file)).name == LOG_FILE
        return real_open(file, mode, *args, **kwargs)

    def timed_card(*args, **kwargs):
        nonlocal card_seconds
        start = time.process_time()
        render_card(*args, **kwargs)
        card_seconds = time.process_time() - start

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "out"
        config, write_seconds = write_log(folder, instructions)
        size = (folder / RUN_DIR / LOG_FILE).stat().st_size / 2**20
        io.open = builtins.open = counted  # io.open: what pathlib's Path.open calls
        dataset_card.render_card = timed_card
        start = time.process_time()
        run_to_folder(config, folder, command="bench_export")
        export_seconds = time.process_time() - start
    return Row(instructions, size, write_seconds, export_seconds, card_seconds, passes)


def make_parser(prog: str | None = None):
    from transformers import HfArgumentParser

    from self_instruct.cli.args import strict

    return strict(HfArgumentParser)(BenchArguments, prog=prog)


def main() -> None:
    (args,) = make_parser().parse_args_into_dataclasses()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spawn = multiprocessing.get_context("spawn")
    print("| instructions | log (MiB) | write (s) | export (s) | of which card (s) | passes |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            row = pool.submit(measure, size).result()
        print(
            f"| {row.instructions:,} | {row.log_mib:.1f} | {row.write_seconds:.1f} "
            f"| {row.export_seconds:.1f} | {row.card_seconds:.1f} | {row.passes} |"
        )
    print(f"load average (1, 5, 15 min): {os.getloadavg()} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
