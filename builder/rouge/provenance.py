"""How close a text is to the pool: the max, mean and top-k ROUGE-L the paper records per kept text.

A decision needs an LCS only for the few pairs prefix filtering cannot rule out; a description
needs the LCS of every pair it covers (the paper's mean is over the whole pool, a quadratic total
over a run). So descriptions are computed apart, for many texts at once, in C++ (`cdist`) and
numpy, and may be capped: beyond `cap` pool texts a text is described against a systematic
sample of its pool (`sample_stride`), which keeps the cost per text flat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from self_instruct.rouge.scoring import fmeasures, lcs_matrix

_BATCH = 256  # texts per cdist call: amortises its setup, bounds its memory


@dataclass
class Similarity:
    """How close one text is to the pool, in ROUGE-L F-measure."""

    max_score: float
    argmax: int  # pool position of the first most similar text; -1 for an empty pool
    mean_score: float  # over the pool texts it was compared with; nan for an empty pool
    most_similar: list[tuple[str, float]]  # best first, ties in pool order


class Pool(NamedTuple):
    """The pooled texts, by position: the texts, their code-point strings, their token counts."""

    texts: list[str]
    codes: list[str]
    lengths: np.ndarray


def sample_stride(pool_size: int, cap: int) -> int:
    """The step between the pool positions a text with `pool_size` texts before it is described
    against: 1 (the whole pool) while the pool holds at most `cap` texts or `cap` is 0, beyond
    that the smallest power of two s with ceil(pool_size / s) <= cap (so cap/2 to cap texts).

    A function of the pool size alone, so the data cannot depend on how texts are batched; powers
    of two nest the samples, so texts of different pool sizes share one LCS block.
    """
    if cap <= 0 or pool_size <= cap:
        return 1
    return 1 << (-(-pool_size // cap) - 1).bit_length()


def sample_size(pool_size: int, cap: int) -> int:
    """How many pool texts a text with `pool_size` texts before it is described against."""
    return -(-pool_size // sample_stride(pool_size, cap))


def similarities(
    codes: list[str], pool_sizes: list[int], pool: Pool, top_k: int, cap: int = 0
) -> list[Similarity]:
    """Max, argmax, mean and top-k of each text against the first `pool_size` pool texts, exact
    (bit for bit rouge_score's) over the positions j < pool_size with j % sample_stride == 0."""
    results = []
    for start in range(0, len(codes), _BATCH):
        sizes = pool_sizes[start : start + _BATCH]
        strides = np.array([sample_stride(size, cap) for size in sizes], dtype=np.int64)
        sizes = np.array(sizes, dtype=np.int64)
        results += _describe_batch(codes[start : start + _BATCH], sizes, strides, pool, top_k)
    return results


def _describe_batch(
    codes: list[str], sizes: np.ndarray, strides: np.ndarray, pool: Pool, top_k: int
) -> list[Similarity]:
    width, step = int(sizes.max()), int(strides.min())  # a batch holds at least one text
    columns = np.arange(0, width, step)  # the pool positions of the LCS block: all rows' samples
    lengths = np.fromiter(map(len, codes), dtype=np.int64, count=len(codes))
    lcs = lcs_matrix(codes, pool.codes[0:width:step])
    scores = fmeasures(lcs, lengths[:, None], pool.lengths[0:width:step])
    sampled = (columns < sizes[:, None]) & (columns % strides[:, None] == 0)
    scores[~sampled] = -1.0  # outside a text's sample: never chosen
    best = scores.argmax(axis=1) if len(columns) else sizes  # the first maximum, as rouge_score's
    results = []
    for row, in_sample, argmax, ranked in zip(
        scores, sampled, best.tolist(), _ranked(scores, top_k), strict=True
    ):
        sample = row[in_sample]
        if not len(sample):
            results.append(Similarity(0.0, -1, float("nan"), []))
            continue
        results.append(
            Similarity(
                max_score=float(row[argmax]),
                argmax=argmax * step,
                mean_score=float(np.add.reduce(sample) / len(sample)),  # np.mean, bit for bit
                most_similar=[(pool.texts[i * step], score) for i, score in ranked],
            )
        )
    return results


def _ranked(scores: np.ndarray, top_k: int) -> list[list[tuple[int, float]]]:
    """Per row, (column, score) of its `top_k` highest scores >= 0, best first, ties in column
    order; O(n) selection."""
    rows, width = scores.shape
    if top_k <= 0:
        return [[] for _ in range(rows)]
    if top_k < width:
        kth = np.partition(scores, width - top_k, axis=1)[:, width - top_k]
        row, column = np.nonzero(scores >= np.maximum(kth, 0.0)[:, None])
    else:
        row, column = np.nonzero(scores >= 0.0)
    order = np.lexsort((column, -scores[row, column], row))
    row, column = row[order], column[order]
    pairs = list(zip(column.tolist(), scores[row, column].tolist(), strict=True))
    ends = np.cumsum(np.bincount(row, minlength=rows)).tolist()
    return [
        pairs[start : min(end, start + top_k)]
        for start, end in zip([0, *ends[:-1]], ends, strict=True)
    ]
