"""ROUGE-L scores with `rouge_score`'s exact floating-point formulas, LCS computed by rapidfuzz.

`rouge_score._score_lcs` computes precision = lcs / len(prediction), recall = lcs / len(target)
and F = 2 * p * r / (p + r) (0 when p + r == 0), and scores 0 when either side has no tokens.
Every function here evaluates those same IEEE operations in the same order (numpy float64
arithmetic is IEEE too), so scores are bit-identical, not merely close.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import LCSseq

from self_instruct.rouge.tokenizer import Vocabulary


class Score(NamedTuple):
    """One ROUGE-L score, field for field like `rouge_score.scoring.Score`."""

    precision: float
    recall: float
    fmeasure: float


def fmeasure(precision: float, recall: float) -> float:
    """`rouge_score.scoring.fmeasure`."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def score_lcs(lcs: int, target_length: int, prediction_length: int) -> Score:
    """The score of a pair whose token sequences have lengths as given and LCS `lcs`."""
    if not target_length or not prediction_length:
        return Score(0.0, 0.0, 0.0)
    precision = lcs / prediction_length
    recall = lcs / target_length
    return Score(precision, recall, fmeasure(precision, recall))


def rouge_l(target_tokens: Sequence[str], prediction_tokens: Sequence[str]) -> Score:
    """ROUGE-L of two token lists; `rouge_score.rouge_scorer._score_lcs` without the O(mn) table."""
    vocabulary = Vocabulary()
    target, prediction = vocabulary.encode(target_tokens), vocabulary.encode(prediction_tokens)
    return score_lcs(LCSseq.similarity(target, prediction), len(target), len(prediction))


def fmeasures(lcs: np.ndarray, length, other_lengths: np.ndarray) -> np.ndarray:
    """Vectorised F-measures of pairs with LCS `lcs` and token counts `length`, `other_lengths`.

    `lcs` has the shape of the result; the lengths broadcast against it. The pool texts play
    rouge_score's prediction and the candidate its target, as in the paper's filter; swapping
    them swaps p and r, and `2 * p * r` and `p + r` are commutative in IEEE arithmetic, so F
    does not depend on the roles.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = lcs / other_lengths
        recall = lcs / length
        scores = np.multiply(2, precision) * recall
        scores /= precision + recall
    scores[lcs == 0] = 0.0  # p + r == 0 or an empty text: F is 0 either way
    return scores


def lcs_matrix(queries: Sequence[str], choices: Sequence[str]) -> np.ndarray:
    """LCS lengths of every query against every choice (code-point strings), in C++."""
    if not queries or not choices:
        return np.zeros((len(queries), len(choices)), dtype=np.int32)
    return process.cdist(queries, choices, scorer=LCSseq.similarity, dtype=np.int32)


def lcs_pairs(queries: Sequence[str], choices: Sequence[str]) -> np.ndarray:
    """LCS lengths of each query with the choice at the same place, in C++."""
    if not queries:
        return np.zeros(0, dtype=np.int32)
    return process.cpdist(queries, choices, scorer=LCSseq.similarity, dtype=np.int32)
