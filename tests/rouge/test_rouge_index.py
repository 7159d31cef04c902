"""The pool index: the paper's greedy decisions and provenance, exactly, with pruning."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_cases import (
    SCORER,
    anchor_lines,
    any_texts,
    brute_force_filter,
    near_duplicates,
    overlapping_texts,
    reference_filter,
)

from self_instruct.rouge.index import FilterDecision, RougeIndex
from self_instruct.rouge.prefix import min_overlap
from self_instruct.rouge.scoring import score_lcs


def _filtered(pool: list[str], candidates: list[str], threshold: float, **kwargs):
    index = RougeIndex(**kwargs)
    index.add(pool)
    return index, index.filter(candidates, threshold=threshold)


def _check_against_reference(pool, candidates, threshold):
    """Decisions, max and mean bit-identical to the paper's loop over rouge_score."""
    _, decisions = _filtered(pool, candidates, threshold)
    reference = reference_filter(pool, candidates, threshold)
    for decision, (accepted, max_score, mean_score) in zip(decisions, reference, strict=True):
        assert (decision.accepted, decision.max_score) == (accepted, max_score)
        if accepted and pool:
            assert decision.mean_score == mean_score
        assert decision.accepted or math.isnan(decision.mean_score)
    return decisions


def test_filter_equals_rouge_score_loop_on_real_prompts():
    seeds = anchor_lines("seed_tasks.jsonl", "instruction")
    prompts = [" ".join(p.split()[:32]) for p in anchor_lines("t0_prompts_dev.jsonl", "prompt")]
    decisions = _check_against_reference(seeds, prompts[:120] + prompts[9000:9080], 0.7)
    assert 20 < sum(d.accepted for d in decisions) < 180  # both outcomes are exercised


def test_filter_equals_brute_force_on_thousands_of_real_prompts():
    seeds = anchor_lines("seed_tasks.jsonl", "instruction")
    prompts = anchor_lines("t0_prompts_dev.jsonl", "prompt")[::9]  # 3,000 prompts, many templates
    short = [" ".join(p.split()[:32]) for p in prompts]
    for candidates, threshold in [(short, 0.7), (short, 0.5), (prompts[:800], 0.7)]:
        index, decisions = _filtered(seeds, candidates, threshold)
        assert [d.accepted for d in decisions] == brute_force_filter(seeds, candidates, threshold)
        assert index.stats.decision_lcs < index.stats.pairs / 5  # pruning did its job


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7, 0.9, 1.0])
def test_filter_equals_brute_force_on_near_duplicates(threshold):
    texts = near_duplicates(1500, seed=int(threshold * 10))
    _, decisions = _filtered(texts[:50], texts[50:], threshold)
    assert [d.accepted for d in decisions] == brute_force_filter(texts[:50], texts[50:], threshold)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(any_texts, max_size=8),
    st.lists(overlapping_texts, max_size=12),
    st.floats(0.0, 1.0),
)
def test_filter_equals_rouge_score_loop_on_random_pools(pool, candidates, threshold):
    _check_against_reference(pool, candidates, threshold)


@settings(max_examples=150, deadline=None)
@given(st.lists(overlapping_texts, min_size=2, max_size=12), st.data())
def test_scores_exactly_at_the_threshold(texts, data):
    """A threshold equal to a score that occurs: F == threshold is kept, F above it dropped."""
    pool, candidates = texts[: len(texts) // 2], texts[len(texts) // 2 :]
    occurring = [SCORER.score(p, c)["rougeL"].fmeasure for p in pool for c in candidates]
    threshold = data.draw(st.sampled_from(occurring))
    _check_against_reference(pool, candidates, threshold)


def test_candidates_see_those_accepted_before_them_in_the_same_call():
    index = RougeIndex()
    index.add(["Name three prime numbers."])
    decisions = index.filter(
        ["Write a poem about the sea.", "Write a poem about the sea!", "Explain gravity."]
    )
    assert [d.accepted for d in decisions] == [True, False, True]
    assert decisions[1].max_score == 1.0 and decisions[1].argmax == 1
    assert decisions[1].most_similar == [("Write a poem about the sea.", 1.0)]
    assert index.texts == [
        "Name three prime numbers.",
        "Write a poem about the sea.",
        "Explain gravity.",
    ]
    assert len(index) == 3


def test_max_score_counts_earlier_candidates_of_a_candidate_rejected_by_the_pool():
    """Rejected by a pool text, a candidate is still scored against those kept before it."""
    index = RougeIndex()
    index.add(["a"])
    decisions = index.filter(["the the", "the the a"], threshold=0.0)
    assert [d.accepted for d in decisions] == [True, False]
    assert decisions[1].max_score == SCORER.score("the the", "the the a")["rougeL"].fmeasure
    assert decisions[1].argmax == 1
    assert [text for text, _ in decisions[1].most_similar] == ["the the", "a"]


def test_one_call_equals_one_candidate_at_a_time():
    """Candidates decided in batches get what they get when decided one by one, field by field."""
    texts = near_duplicates(300, seed=3)
    together, alone = RougeIndex(), RougeIndex()
    together.add(texts[:10])
    alone.add(texts[:10])
    batched = together.filter(texts[10:], threshold=0.6, top_k=3)
    single = [d for text in texts[10:] for d in alone.filter([text], threshold=0.6, top_k=3)]
    assert 20 < sum(d.accepted for d in batched) < 280
    assert repr(batched) == repr(single)  # repr: nan fields compare equal
    assert together.texts == alone.texts


def test_provenance_of_accepted_candidates_is_exact():
    pool = ["a b c d", "a b x y", "a b c d e f", "q r s t", "a b c d"]
    index = RougeIndex()
    index.add(pool)
    (decision,) = index.filter(["a b c z"], threshold=0.9, top_k=3)
    scores = [SCORER.score("a b c z", text)["rougeL"].fmeasure for text in pool]
    assert isinstance(decision, FilterDecision) and decision.accepted
    assert decision.max_score == max(scores) == scores[0]
    assert decision.argmax == 0  # the first of the tied maxima
    assert decision.mean_score == float(np.mean(scores))
    assert decision.most_similar == [("a b c d", scores[0]), ("a b c d", scores[4])] + [
        ("a b c d e f", scores[2])
    ]


def test_max_similarity_scores_the_whole_pool_and_adds_nothing():
    seeds = anchor_lines("seed_tasks.jsonl", "instruction")
    index = RougeIndex()
    index.add(seeds)
    candidates = [seeds[3], "Give me a recipe for a breakfast without eggs.", ""]
    results = index.max_similarity(candidates, top_k=5)
    assert len(index) == len(seeds)
    for candidate, result in zip(candidates, results, strict=True):
        scores = np.array([SCORER.score(candidate, s)["rougeL"].fmeasure for s in seeds])
        assert result.max_score == scores.max() and result.argmax == int(scores.argmax())
        assert result.mean_score == float(np.mean(scores))
        order = sorted(range(len(seeds)), key=lambda i: (-scores[i], i))[:5]
        assert result.most_similar == [(seeds[i], scores[i]) for i in order]
    assert results[0].max_score == 1.0 and results[0].argmax == 3


def test_empty_pool_and_texts_without_tokens():
    index = RougeIndex()
    (similarity,) = index.max_similarity(["anything"])
    assert (similarity.max_score, similarity.argmax, similarity.most_similar) == (0.0, -1, [])
    assert math.isnan(similarity.mean_score)
    decisions = index.filter(["", "日本語", "first text here", "first text here"], threshold=0.7)
    assert [d.accepted for d in decisions] == [True, True, True, False]
    assert decisions[2].max_score == 0.0 and decisions[2].mean_score == 0.0


def test_unicode_tokenizer_filters_other_scripts():
    texts = ["日本語の文を要約してください。", "日本語の文章を要約してください。"]
    assert [d.accepted for d in RougeIndex().filter(texts)] == [True, True]
    decisions = RougeIndex(tokenizer="unicode").filter(texts)
    assert [d.accepted for d in decisions] == [True, False]


def test_several_thresholds_on_one_index():
    texts = near_duplicates(400, seed=7)
    index = RougeIndex()
    index.add(texts[:20])
    first = index.filter(texts[20:200], threshold=0.5)
    second = index.filter(texts[200:], threshold=0.8)  # a second prefix index, built lazily
    pool = texts[:20] + [t for t, d in zip(texts[20:200], first, strict=True) if d.accepted]
    assert [d.accepted for d in second] == brute_force_filter(pool, texts[200:], 0.8)


def test_bad_threshold_is_an_error():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RougeIndex().filter(["x"], threshold=1.5)


@pytest.mark.parametrize("length", range(0, 200, 7))
@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.5, 0.7, 0.95, 1.0])
def test_min_overlap_never_exceeds_the_true_bound(length, threshold):
    """Every overlap whose best case scores above the threshold is at least `min_overlap`."""
    needed = [
        lcs
        for lcs in range(1, length + 1)
        if score_lcs(lcs, length, lcs).fmeasure > threshold  # the best case: LCS = other length
    ]
    assert not needed or min_overlap(length, threshold) <= min(needed)
