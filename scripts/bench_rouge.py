"""
# Benchmark the ROUGE-L pool filter against the paper's loop over rouge_score
```bash
python scripts/bench_rouge.py                      # a few minutes on 2 cores
python scripts/bench_rouge.py --reference-size 500 --skip-full-length
```

Corpus: the T0 prompts of the paper's baselines (27,455 real prompts, many near-duplicates),
each cut to its first 32 words, with the 175 paper seeds as the initial pool; and the same
prompts at full length as a stress case. Every measurement runs in a fresh forked process, so
its peak memory is its own. Decisions of ours and of the reference must be identical, and so must
the mean scores the paper records for kept texts. Times are CPU seconds: the reference runs once
(over two minutes), ours is the best of up to 5 runs (runs under 5 s in all).

Then two more measurements: the `evaluate` metric with many references per prediction (the
seeds against 1,000 short prompts each) beside rouge_score's `score_multi`, and the filter's CPU
time per 1,000 instructions, decisions only, with provenance over at most `--provenance-pool`
pool texts (the pipeline's default) and over the whole pool, at 2,000 to 50,000 made-up
instructions (`--provenance-sizes`; none skips it).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rouge_score import rouge_scorer

from self_instruct.config import PipelineConfig
from self_instruct.rouge.index import RougeIndex

_REPEATS, _REPEAT_BELOW = 5, 5.0
ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "self_instruct"


@dataclass
class BenchArguments:
    """What to run; the defaults take a few minutes on 2 CPU cores."""

    anchors: str = field(
        default=str(ANCHORS),
        metadata={"help": "Folder with seed_tasks.jsonl, t0_prompts_dev.jsonl."},
    )
    threshold: float = field(default=0.7, metadata={"help": "ROUGE-L F-measure threshold."})
    reference_size: int = field(
        default=2000,
        metadata={"help": "Short texts for the side-by-side run with rouge_score (the reference)."},
    )
    sizes: list[int] = field(
        default_factory=lambda: [5000, 10000, 20000, 0],
        metadata={"help": "Scaling table sizes on short texts; 0 means all.", "nargs": "*"},
    )
    skip_full_length: bool = field(
        default=False, metadata={"help": "Skip the full-length prompts (the stress case)."}
    )
    provenance_sizes: list[int] = field(
        default_factory=lambda: [2000, 10000, 50000],
        metadata={"help": "Synthetic instructions for the provenance cost table.", "nargs": "*"},
    )
    provenance_pool: int = field(
        default=PipelineConfig.provenance_pool,
        metadata={"help": "The provenance cost table's capped column: pool texts described."},
    )
    metric_shape: list[int] = field(
        default_factory=lambda: [157, 1000],
        metadata={
            "help": "Predictions and references per prediction for the evaluate metric's row.",
            "nargs": 2,
        },
    )


@dataclass
class Row:
    """One measured run."""

    name: str
    texts: int
    accepted: int
    seconds: float  # CPU time of the filter: the machine may be shared, the code is serial
    pairs: int
    lcs: int
    peak_mb: float
    decisions: list[bool] = field(repr=False)
    means: list[float] = field(repr=False)  # mean score of each kept text; empty if not recorded


def load_corpus(anchors: Path) -> tuple[list[str], list[str]]:
    """The paper's seed instructions and the T0 prompts."""
    read = lambda name, key: [  # noqa: E731
        json.loads(line)[key] for line in (anchors / name).open(encoding="utf-8")
    ]
    return read("seed_tasks.jsonl", "instruction"), read("t0_prompts_dev.jsonl", "prompt")


def reference_filter(
    seeds: list[str], texts: list[str], threshold: float
) -> tuple[list[bool], list[float]]:
    """The paper's greedy loop over rouge_score, pool pre-tokenized as Stanford Alpaca does.

    Like the paper's `bootstrap_instructions.py` it records, for a kept text, the 10 most similar
    pool texts and the mean score: the provenance our index computes too. Returns the decisions
    and the mean score of each kept text.
    """
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = [scorer._tokenizer.tokenize(text) for text in seeds]
    pool_texts, decisions, means = list(seeds), [], []
    for text in texts:
        tokens = scorer._tokenizer.tokenize(text)
        scores = [rouge_scorer._score_lcs(tokens, other).fmeasure for other in pool]
        decisions.append(max(scores) <= threshold)
        if decisions[-1]:
            most_similar = {pool_texts[i]: scores[i] for i in np.argsort(scores)[-10:][::-1]}
            assert max(most_similar.values()) == max(scores)
            means.append(float(np.mean(scores)))
            pool.append(tokens)
            pool_texts.append(text)
    return decisions, means


def run_reference(seeds, texts, threshold) -> Row:
    reference_filter(seeds[:10], seeds[10:20], threshold)  # warm-up, as for ours
    start = time.process_time()
    decisions, means = reference_filter(seeds, texts, threshold)
    seconds = time.process_time() - start
    pairs = _pairs(len(seeds), decisions)
    name = "rouge_score loop"
    return Row(name, len(texts), sum(decisions), seconds, pairs, pairs, 0, decisions, means)


def run_ours(seeds, texts, threshold, provenance: bool) -> Row:
    """Our filter, best CPU time of up to `_REPEATS` runs (timeit's rule: noise only adds time).

    A run over `_REPEAT_BELOW` seconds is not repeated: it is long enough to average noise out.
    A warm-up call on a throwaway index goes first: first calls into numpy and rapidfuzz cost
    ~10 ms once per process, which is not the filter's work and would blur the small cases.
    """
    RougeIndex().filter(seeds, threshold, provenance=provenance)
    seconds = []
    while len(seconds) < _REPEATS and sum(seconds) < _REPEAT_BELOW:
        index = RougeIndex()
        index.add(seeds)
        start = time.process_time()
        results = index.filter(texts, threshold, provenance=provenance)
        seconds.append(time.process_time() - start)
    decisions = [result.accepted for result in results]
    means = [result.mean_score for result in results if result.accepted and provenance]
    stats = index.stats
    name = "ours" if provenance else "ours, decisions only"
    lcs = stats.decision_lcs + stats.provenance_lcs
    return Row(
        name, len(texts), sum(decisions), min(seconds), stats.pairs, lcs, 0, decisions, means
    )


def run_metric(seeds: list[str], texts: list[str], shape: list[int]) -> str:
    """The evaluate metric with many references per prediction, against rouge_score's
    `score_multi` loop: the same scores, and CPU seconds of each (ours best of 5)."""
    from self_instruct.rouge.rouge import RougeL

    predictions, references = (seeds + texts)[: shape[0]], texts[: shape[1]]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    start = time.process_time()
    expected = [scorer.score_multi(references, p)["rougeL"].fmeasure for p in predictions]
    reference_seconds = time.process_time() - start
    metric, seconds = RougeL(), []
    for _ in range(_REPEATS):
        start = time.process_time()
        result = metric.compute(
            predictions=predictions,
            references=[references] * len(predictions),
            use_aggregator=False,
        )
        seconds.append(time.process_time() - start)
    if result["rougeL"] != expected:
        raise AssertionError("The metric's scores differ from rouge_score's score_multi.")
    return (
        f"evaluate metric, {len(predictions)} predictions x {len(references):,} references "
        f"each: ours {min(seconds):.3f} s, rouge_score score_multi {reference_seconds:.2f} s "
        f"({reference_seconds / min(seconds):,.0f}x), scores identical"
    )


SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def synthetic_instructions(count: int, seed: int = 0) -> list[str]:
    """Instruction-shaped texts of made-up words over a few common ones: an unbounded supply
    of texts that pass the 0.7 filter, as a long run's accepted instructions do."""
    rng = random.Random(seed)
    common = ["the", "a", "of", "to", "and", "in", "for", "with", "given", "following"]
    verbs = ["Write", "Explain", "List", "Describe", "Classify", "Summarize", "Translate"]

    def word() -> str:
        return rng.choice(common) if rng.random() < 0.3 else "".join(rng.choices(SYLLABLES, k=3))

    return [
        f"{rng.choice(verbs)} {' '.join(word() for _ in range(rng.randint(6, 16)))}."
        for _ in range(count)
    ]


def run_provenance(seeds: list[str], size: int, threshold: float, cap: int | None) -> Row:
    """The filter over `size` synthetic instructions, once (CPU time; no repeats); `cap` is the
    provenance pool (0: the whole pool), None for decisions only."""
    texts = synthetic_instructions(size)
    options = {"provenance": cap is not None, "provenance_pool": cap or 0}
    RougeIndex().filter(seeds, threshold, **options)  # warm-up
    index = RougeIndex()
    index.add(seeds)
    start = time.process_time()
    results = index.filter(texts, threshold, **options)
    seconds = time.process_time() - start
    stats = index.stats
    kept = sum(result.accepted for result in results)
    lcs = stats.decision_lcs + stats.provenance_lcs
    return Row(
        "decisions" if cap is None else f"provenance over {cap or 'all'}",
        size,
        kept,
        seconds,
        stats.pairs,
        lcs,
        0,
        [],
        [],
    )


def provenance_table(seeds: list[str], sizes: list[int], threshold: float, cap: int) -> str:
    """CPU seconds per 1,000 instructions: decisions only, provenance over at most `cap` pool
    texts, over the whole pool (flat means linear); and the LCS each computes in all."""
    lines = [
        "| instructions | kept | decisions only: s per 1,000 "
        f"| provenance over <= {cap:,}: s per 1,000 | over the whole pool: s per 1,000 "
        f"| LCS, <= {cap:,} | LCS, whole pool |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        rows = [in_child(run_provenance, seeds, size, threshold, c) for c in (None, cap, 0)]
        per = " | ".join(f"{row.seconds / size * 1000:.3f}" for row in rows)
        lines.append(
            f"| {size:,} | {rows[1].accepted:,} | {per} | {rows[1].lcs:,} | {rows[2].lcs:,} |"
        )
    return "\n".join(lines)


def _pairs(pool_size: int, decisions: list[bool]) -> int:
    pairs = 0
    for accepted in decisions:
        pairs += pool_size
        pool_size += accepted
    return pairs


def in_child(function, *args) -> Row:
    """Run `function` in a fresh forked process and add its peak resident memory."""
    with multiprocessing.get_context("fork").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(_measured, (function, *args))


def _measured(function, *args) -> Row:
    row = function(*args)
    row.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def format_table(rows: list[tuple[str, Row]], reference: Row) -> str:
    """A Markdown table; the speed-up compares CPU time per (candidate, pool text) pair."""
    header = (
        "| corpus | method | texts | kept | CPU time (s) | speed-up | pairs | pairs without LCS "
        "| pairs ruled out / s | peak RSS (MB) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    for corpus, row in rows:
        speedup = (reference.seconds / reference.pairs) / (row.seconds / row.pairs)
        pruned = row.pairs - row.lcs
        lines.append(
            f"| {corpus} | {row.name} | {row.texts:,} | {row.accepted:,} | {row.seconds:.2f} "
            f"| {speedup:,.0f}x | {row.pairs:,} | {pruned / row.pairs:.1%} "
            f"| {pruned / row.seconds:,.0f} | {row.peak_mb:,.0f} |"
        )
    return "\n".join(lines)


def main(args: BenchArguments) -> None:
    load_before = os.getloadavg()
    seeds, prompts = load_corpus(Path(args.anchors))
    short = [" ".join(prompt.split()[:32]) for prompt in prompts]
    first = short[: args.reference_size]
    reference = in_child(run_reference, seeds, first, args.threshold)
    rows = [(f"short, first {len(first):,}", reference)]
    for provenance in (True, False):
        ours = in_child(run_ours, seeds, first, args.threshold, provenance)
        if ours.decisions != reference.decisions:
            raise AssertionError("Decisions differ from the rouge_score reference.")
        if provenance and ours.means != reference.means:
            raise AssertionError("Mean scores differ from the rouge_score reference.")
        rows.append((f"short, first {len(first):,}", ours))
    cases = [
        (f"short, {size or len(short):,}", short[:size] if size else short) for size in args.sizes
    ]
    if not args.skip_full_length:
        cases.append((f"full length, {len(prompts):,}", prompts))
    for label, texts in cases:
        for provenance in (True, False):
            rows.append((label, in_child(run_ours, seeds, texts, args.threshold, provenance)))
    print(format_table(rows, reference))
    print(f"\n{run_metric(seeds, short, args.metric_shape)}")
    if args.provenance_sizes:
        table = provenance_table(seeds, args.provenance_sizes, args.threshold, args.provenance_pool)
        print(f"\n{table}")
    print(
        f"\nspeed-up: the reference's CPU time over ours on the first {len(first):,} short texts, "
        "both measured in this run; for the other rows it is extrapolated from the reference's "
        "time per pair (running it would take quadratically long). 'pairs without LCS': share "
        "of (candidate, pool text) pairs decided from token counts alone."
    )
    load = ", ".join(f"{value:.2f}" for value in (*load_before, *os.getloadavg()))
    print(f"load average (1, 5, 15 min) before, after: {load} on {os.cpu_count()} CPUs")


def make_parser(prog: str | None = None):
    from transformers import HfArgumentParser

    from self_instruct.cli.args import strict

    return strict(HfArgumentParser)(BenchArguments, prog=prog)


if __name__ == "__main__":
    (arguments,) = make_parser().parse_args_into_dataclasses()
    main(arguments)
