"""`provenance_pool`: a kept text described against a stride sample of a large pool, exactly.

The references here score with rouge_score itself, against sample positions computed from the
option's definition (the smallest power of two s with ceil(n / s) <= cap), not from our code.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rouge_cases import SCORER, near_duplicates

from self_instruct.rouge import provenance
from self_instruct.rouge.index import RougeIndex
from self_instruct.rouge.provenance import sample_size, sample_stride
from self_instruct.rouge.scoring import lcs_matrix

CAP = 50


def reference_stride(pool_size: int, cap: int) -> int:
    """The definition, by search: the first power of two leaving at most `cap` texts."""
    stride = 1
    while cap and -(-pool_size // stride) > cap:
        stride *= 2
    return stride


def corpus() -> tuple[list[str], list[str]]:
    """180 pool texts and 420 candidates: kept ones meet pools of 180 to ~600 (strides 4 to 16)."""
    texts = near_duplicates(600, seed=11)
    return texts[:180], texts[180:]


def filtered(pool, candidates, splits=None, **options):
    """The decisions of one index over `candidates`, cut into calls at the `splits` given."""
    index = RougeIndex()
    index.add(pool)
    bounds = [0, *(splits or []), len(candidates)]
    decisions = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        decisions += index.filter(candidates[start:end], threshold=0.9, top_k=5, **options)
    return index, decisions


def test_sampled_provenance_equals_rouge_score_on_the_stride_sample():
    pool, candidates = corpus()
    index, decisions = filtered(pool, candidates, provenance_pool=CAP)
    _, exact = filtered(pool, candidates)
    assert [d.accepted for d in decisions] == [d.accepted for d in exact]  # decisions: unchanged
    size, strides = len(pool), set()
    for candidate, decision in zip(candidates, decisions, strict=True):
        if not decision.accepted:
            continue
        stride = reference_stride(size, CAP)
        positions = range(0, size, stride)
        scores = [SCORER.score(candidate, index.texts[j])["rougeL"].fmeasure for j in positions]
        assert CAP / 2 < len(scores) <= CAP
        best = scores.index(max(scores))
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:5]
        assert decision.max_score == scores[best]
        assert decision.argmax == positions[best]  # a real pool position
        assert decision.mean_score == float(np.mean(scores))
        assert decision.most_similar == [(index.texts[positions[i]], scores[i]) for i in ranked]
        strides.add(stride)
        size += 1
    assert strides == {4, 8, 16}  # the corpus crosses two power-of-two boundaries


def test_sampled_provenance_does_not_depend_on_how_candidates_are_batched():
    pool, candidates = corpus()
    _, together = filtered(pool, candidates, provenance_pool=CAP)
    _, alone = filtered(pool, candidates, list(range(1, len(candidates))), provenance_pool=CAP)
    rng = random.Random(5)
    for _ in range(3):
        splits = sorted(rng.sample(range(1, len(candidates)), 25))
        _, split = filtered(pool, candidates, splits, provenance_pool=CAP)
        assert repr(split) == repr(together)  # repr: nan fields compare equal
    assert repr(alone) == repr(together)
    assert 100 < sum(d.accepted for d in together) < len(candidates)


def test_a_cap_no_smaller_than_the_pool_is_the_whole_pool():
    pool, candidates = corpus()
    index, exact = filtered(pool, candidates, provenance_pool=0)
    largest = len(index) - 1  # the pool the last kept candidate met
    for cap in (largest, largest + 1000):
        assert repr(filtered(pool, candidates, provenance_pool=cap)[1]) == repr(exact)
    sampled = filtered(pool, candidates, provenance_pool=largest - 1)[1]
    assert repr(sampled) != repr(exact)  # one text short of it, the last one is sampled


def test_provenance_lcs_counts_the_sampled_pairs_only():
    pool, candidates = corpus()
    index, decisions = filtered(pool, candidates, provenance_pool=CAP)
    kept = sum(d.accepted for d in decisions)
    assert index.stats.provenance_lcs == sum(
        -(-n // reference_stride(n, CAP)) for n in range(len(pool), len(pool) + kept)
    )


def test_only_sampled_positions_get_an_lcs(monkeypatch):
    """The LCS block of a batch is its samples' union (one stride, two at a power-of-two
    boundary), not the whole pool masked afterwards."""
    computed = []

    def counting_lcs_matrix(queries, choices):
        computed.append(len(queries) * len(choices))
        return lcs_matrix(queries, choices)

    monkeypatch.setattr(provenance, "lcs_matrix", counting_lcs_matrix)
    pool, candidates = corpus()
    index, _ = filtered(pool, candidates, provenance_pool=CAP)
    assert index.stats.provenance_lcs <= sum(computed) < 1.25 * index.stats.provenance_lcs


def test_max_similarity_stays_exact_beyond_any_cap():
    pool, candidates = corpus()
    index, _ = filtered(pool, candidates, provenance_pool=CAP)
    (result,) = index.max_similarity([candidates[0]])
    scores = [SCORER.score(candidates[0], text)["rougeL"].fmeasure for text in index.texts]
    assert result.mean_score == float(np.mean(scores)) and result.max_score == max(scores)


def test_a_negative_provenance_pool_is_an_error():
    with pytest.raises(ValueError, match="provenance_pool must be >= 0, got -1"):
        RougeIndex().filter(["x"], provenance_pool=-1)


@given(st.integers(0, 10**7), st.integers(0, 5000))
def test_the_stride_is_the_definition(pool_size, cap):
    stride = sample_stride(pool_size, cap)
    assert stride == reference_stride(pool_size, cap)
    assert sample_size(pool_size, cap) == math.ceil(pool_size / stride)
    if cap and pool_size > cap:
        assert cap / 2 < sample_size(pool_size, cap) <= cap
