"""How close a text is to the pool: the max, mean and top-k ROUGE-L the paper records per kept text.

A decision needs an LCS only for the few pairs prefix filtering cannot rule out; a description
needs the LCS of every pair (the mean is over the whole pool). So descriptions are computed
apart, for many texts at once, in C++ (`cdist`) and numpy.
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
    mean_score: float  # over the whole pool it was compared with; nan for an empty pool
    most_similar: list[tuple[str, float]]  # best first, ties in pool order


class Pool(NamedTuple):
    """The pooled texts, by position: the texts, their code-point strings, their token counts."""

    texts: list[str]
    codes: list[str]
    lengths: np.ndarray


def describe(codes: list[str], pool_sizes: list[int], pool: Pool, top_k: int) -> list[Similarity]:
    """Exact max, argmax, mean and top-k of each text against the first `pool_size` pool texts."""
    results = []
    for start in range(0, len(codes), _BATCH):
        sizes = np.array(pool_sizes[start : start + _BATCH], dtype=np.int64)
        results += _describe_batch(codes[start : start + _BATCH], sizes, pool, top_k)
    return results


def _describe_batch(
    codes: list[str], sizes: np.ndarray, pool: Pool, top_k: int
) -> list[Similarity]:
    width = int(sizes.max(initial=0))
    lengths = np.fromiter(map(len, codes), dtype=np.int64, count=len(codes))
    lcs = lcs_matrix(codes, pool.codes[:width])
    scores = fmeasures(lcs, lengths[:, None], pool.lengths[:width])
    scores[np.arange(width) >= sizes[:, None]] = -1.0  # past a text's pool: never chosen
    best = scores.argmax(axis=1) if width else sizes  # the first maximum, as rouge_score's
    results = []
    for row, size, argmax, ranked in zip(
        scores, sizes.tolist(), best.tolist(), _ranked(scores, top_k), strict=True
    ):
        if not size:
            results.append(Similarity(0.0, -1, float("nan"), []))
            continue
        results.append(
            Similarity(
                max_score=float(row[argmax]),
                argmax=argmax,
                mean_score=float(np.add.reduce(row[:size]) / size),  # np.mean, bit for bit
                most_similar=[(pool.texts[i], score) for i, score in ranked],
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
