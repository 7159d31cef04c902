"""ROUGE-L scores and the evaluate metric module against rouge_score, bit for bit."""

from __future__ import annotations

import doctest
import itertools
import math
from pathlib import Path

import evaluate
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_cases import ADVERSARIAL, SCORER, anchor_lines, any_texts, overlapping_texts
from rouge_score import tokenize as rouge_tokenize

import self_instruct.rouge.rouge as metric_module
from self_instruct.about import CITATION, ROUGE_CITATION
from self_instruct.rouge import METRIC_PATH
from self_instruct.rouge.index import RougeIndex
from self_instruct.rouge.scoring import rouge_l
from self_instruct.rouge.tokenizer import (
    Vocabulary,
    get_tokenizer,
    tokenize_rouge_score,
    tokenize_unicode,
)


def _same_score(target: str, prediction: str) -> None:
    expected = SCORER.score(target, prediction)["rougeL"]
    ours = rouge_l(tokenize_rouge_score(target), tokenize_rouge_score(prediction))
    # Bit-identical: == on floats, and no NaN anywhere.
    assert tuple(ours) == tuple(expected), (target, prediction)
    assert all(isinstance(value, float) and not math.isnan(value) for value in ours)


def test_tokenizer_matches_rouge_score_on_real_and_adversarial_texts():
    texts = anchor_lines("seed_tasks.jsonl", "instruction")
    texts += anchor_lines("t0_prompts_dev.jsonl", "prompt")[::50]
    for text in texts + ADVERSARIAL:
        assert tokenize_rouge_score(text) == rouge_tokenize.tokenize(text, None)


@settings(max_examples=300, deadline=None)
@given(any_texts)
def test_tokenizer_matches_rouge_score_on_random_texts(text):
    assert tokenize_rouge_score(text) == rouge_tokenize.tokenize(text, None)


def test_scores_bit_identical_on_real_pairs():
    seeds = anchor_lines("seed_tasks.jsonl", "instruction")
    prompts = [" ".join(p.split()[:40]) for p in anchor_lines("t0_prompts_dev.jsonl", "prompt")]
    texts = seeds[:60] + prompts[:2000:25]  # t0 prompts come in runs of one template
    for target, prediction in itertools.product(texts, texts[:40]):
        _same_score(target, prediction)


def test_scores_bit_identical_on_adversarial_pairs():
    for target, prediction in itertools.product(ADVERSARIAL, repeat=2):
        _same_score(target, prediction)


@settings(max_examples=500, deadline=None)
@given(any_texts, any_texts)
def test_scores_bit_identical_on_random_pairs(target, prediction):
    _same_score(target, prediction)


@settings(max_examples=200, deadline=None)
@given(overlapping_texts, overlapping_texts, st.floats(0.0, 1.0))
def test_score_is_symmetric_bit_for_bit(first, second, threshold):
    """The pool index scores a pair in one direction only (a candidate against the pool, and
    against the earlier candidates of its batch): swapping the roles swaps precision and recall,
    and must leave our F-measure, and so the keep/drop decision, bit for bit the same."""
    tokens = tokenize_rouge_score(first), tokenize_rouge_score(second)
    forward, backward = rouge_l(*tokens), rouge_l(*tokens[::-1])
    assert (forward.precision, forward.recall) == (backward.recall, backward.precision)
    assert forward.fmeasure == backward.fmeasure
    for pool, candidate in [(first, second), (second, first)]:
        index = RougeIndex()
        index.add([pool])
        [decision] = index.filter([candidate], threshold=threshold)
        assert (decision.accepted, decision.max_score) == (
            forward.fmeasure <= threshold,
            forward.fmeasure,
        )


def test_unicode_tokenizer_keeps_other_scripts():
    assert tokenize_unicode("Übersetze ＤＥＮ Satz!") == ["übersetze", "den", "satz"]
    assert tokenize_unicode("日本語の文") == ["日", "本", "語", "の", "文"]
    assert tokenize_unicode("Straße, ÉTÉ_2024") == ["strasse", "été", "2024"]
    assert tokenize_rouge_score("日本語の文") == []


def test_get_tokenizer_names_and_callables():
    assert get_tokenizer("rouge_score") is tokenize_rouge_score
    assert get_tokenizer(str.split) is str.split
    with pytest.raises(ValueError, match="Unknown tokenizer 'nltk'"):
        get_tokenizer("nltk")


def test_vocabulary_overflow_is_an_error(monkeypatch):
    monkeypatch.setattr(Vocabulary, "MAX_SIZE", 3)
    vocabulary = Vocabulary()
    assert vocabulary.encode(["a", "b", "c", "a"]) == "\x00\x01\x02\x00"
    with pytest.raises(OverflowError):
        vocabulary.encode(["d"])


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(METRIC_PATH)


def test_metric_loads_offline_from_its_folder(metric):
    assert Path(METRIC_PATH, "rouge.py").is_file()
    assert Path(METRIC_PATH, "README.md").is_file()
    assert metric.name == "rouge_l"
    assert "ROUGE" in metric.description and "Lin, Chin-Yew" in metric.citation


def test_metric_matches_rouge_score_per_example_and_aggregated(metric):
    prompts = anchor_lines("t0_prompts_dev.jsonl", "prompt")[:3000:10]
    predictions, references = prompts[0::2], prompts[1::2]
    n = min(len(predictions), len(references))
    predictions, references = predictions[:n] + ADVERSARIAL, references[:n] + ADVERSARIAL[::-1]
    expected = [SCORER.score(r, p)["rougeL"] for r, p in zip(references, predictions, strict=True)]
    result = metric.compute(predictions=predictions, references=references, use_aggregator=False)
    assert result["rougeL"] == [s.fmeasure for s in expected]
    assert result["rougeL_precision"] == [s.precision for s in expected]
    assert result["rougeL_recall"] == [s.recall for s in expected]
    aggregated = metric.compute(predictions=predictions, references=references)
    assert aggregated["rougeL"] == float(np.mean([s.fmeasure for s in expected]))
    assert metric.compute(predictions=predictions, references=references) == aggregated


def test_metric_multi_reference_scores_the_best_reference(metric):
    predictions = ["Write a poem about the sea.", "Name a colour.", "same same"]
    references = [
        ["Compose a haiku.", "Write a short poem about the sea.", "Write a poem about the sea!"],
        ["", "!!!"],
        ["same", "same"],
    ]
    result = metric.compute(predictions=predictions, references=references, use_aggregator=False)
    expected = [
        SCORER.score_multi(r, p)["rougeL"] for r, p in zip(references, predictions, strict=True)
    ]
    assert result["rougeL"] == [s.fmeasure for s in expected] == [1.0, 0.0, 2 / 3]
    assert result["rougeL_recall"] == [s.recall for s in expected]


def test_metric_options(metric):
    kwargs = {"predictions": ["日本語の文"], "references": ["日本語の文章"]}
    precision, recall = 5 / 5, 5 / 6  # one token per character: LCS 5 of 5 and 6 tokens
    expected = 2 * precision * recall / (precision + recall)
    assert metric.compute(**kwargs)["rougeL"] == 0.0
    assert metric.compute(**kwargs, tokenizer="unicode")["rougeL"] == expected
    assert metric.compute(**kwargs, tokenizer=list)["rougeL"] == expected
    assert metric.compute(**kwargs, rouge_types=["rougeL"])["rougeL"] == 0.0
    with pytest.raises(ValueError, match="only"):
        metric.compute(**kwargs, rouge_types=["rouge1"])


def test_metric_takes_the_keywords_of_evaluates_rouge(metric):
    """A call written for evaluate's `rouge` runs unchanged: use_aggregator=False gives one
    score per example, use_stemmer=False is what this module computes, and True, which it
    cannot honour, is refused rather than ignored."""
    kwargs = {"predictions": ["the cats ran", "a b"], "references": ["the cat runs", "a b"]}
    plain = metric.compute(**kwargs)
    assert metric.compute(**kwargs, use_stemmer=False, use_aggregator=True) == plain
    per_example = metric.compute(**kwargs, use_stemmer=False, use_aggregator=False)
    assert per_example["rougeL"] == [pytest.approx(1 / 3), 1.0]
    with pytest.raises(ValueError, match="never stems"):
        metric.compute(**kwargs, use_stemmer=True)


def test_card_examples_run():
    card = Path(METRIC_PATH, "README.md")
    sections = [line for line in card.read_text(encoding="utf-8").splitlines() if line[:3] == "## "]
    assert sections == [
        "## Metric Description",
        "## How to Use",
        "## Limitations and Bias",
        "## Speed",
        "## Citation",
    ]
    results = doctest.testfile(str(card), module_relative=False)
    assert results.attempted >= 10 and results.failed == 0


def test_card_cites_what_the_metric_cites(metric):
    """One Lin (2004) citation: the card shows the package's constants, as the metric reports."""
    card = Path(METRIC_PATH, "README.md").read_text(encoding="utf-8")
    bibtex = card.split("## Citation\n```bibtex\n")[1].split("```")[0]
    assert bibtex == metric.citation == ROUGE_CITATION + CITATION


def test_module_docstring_example_runs():
    results = doctest.testmod(metric_module)
    assert results.attempted >= 5 and results.failed == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(overlapping_texts, min_size=1, max_size=4), overlapping_texts)
def test_score_multi_matches_rouge_score(references, prediction):
    expected = SCORER.score_multi(references, prediction)["rougeL"]
    [result] = metric_module._score_all([prediction], [references], tokenize_rouge_score)
    assert tuple(result) == tuple(expected)


def test_many_references_run_on_the_index_with_the_same_scores(monkeypatch):
    """157 predictions against one list of 1,000 real references (T0 prompts, with the paper's
    seeds as predictions): scores equal rouge_score's score_multi bit for bit, and the per-pair
    Python path runs once per prediction (for its best reference), not once per pair."""
    seeds = anchor_lines("seed_tasks.jsonl", "instruction")
    prompts = [" ".join(p.split()[:32]) for p in anchor_lines("t0_prompts_dev.jsonl", "prompt")]
    predictions = seeds[:150] + ADVERSARIAL[:7]
    references = (seeds[:20] + ADVERSARIAL + prompts[::2])[:1000]  # ties, empty texts, repeats
    calls = []
    counted = lambda *args: calls.append(args) or rouge_l(*args)  # noqa: E731
    monkeypatch.setattr(metric_module, "rouge_l", counted)
    metric = metric_module.RougeL()  # evaluate.load runs a copy of the module: not patched
    result = metric.compute(
        predictions=predictions, references=[references] * len(predictions), use_aggregator=False
    )
    assert len(calls) == len(predictions)
    expected = [SCORER.score_multi(references, p)["rougeL"] for p in predictions]
    assert result["rougeL"] == [s.fmeasure for s in expected]
    assert result["rougeL_precision"] == [s.precision for s in expected]
    assert result["rougeL_recall"] == [s.recall for s in expected]
