"""Shared by the ROUGE tests: real corpora, adversarial texts and the reference filter loops."""

from __future__ import annotations

import json
import random

import numpy as np
from anchors import PAPER_SEEDS, skip_unless_present
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from self_instruct.rouge.scoring import fmeasures, lcs_matrix
from self_instruct.rouge.tokenizer import Vocabulary

ANCHORS = PAPER_SEEDS.parent
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

ADVERSARIAL = [
    "",
    "   ",
    "!!! ... ??? --- ***",
    "日本語の文を要約してください。",
    "Переведите это предложение на английский.",
    "Übersetze den Satz ins Französische, s'il vous plaît.",
    "\u212a\u212a kelvin KELVIN \u0130stanbul ISTANBUL",  # letters that lower-case to ASCII
    "the the the the the the the the",
    "the the the cat the the",
    "1 2 3 4 5 6 7 8 9 10 11 12",
    "3.14159 2,718 1e10 0x1F 007",
    "a",
    "A a A a",
    "don't can't won't it's",
    "tab\tseparated\nnew\nlines\r\nand  spaces",
    "emoji 🙂 between 🙂 words 🙂",
    "word " * 300,
]

_WORDS = [
    "the", "a", "write", "list", "poem", "sea", "three", "prime", "numbers", "explain", "why",
    "Write", "LIST", "don't", "it's", "42", "7", "x2", "é", "日本", "été", "\u212a", "...", "-",
]  # fmt: skip
_SEPARATORS = [" ", "  ", ", ", ". ", "\n", "-", "/", "'", "?"]

# Texts built from a small vocabulary, so pairs overlap a lot and scores hit many exact values.
overlapping_texts = st.lists(
    st.tuples(st.sampled_from(_WORDS), st.sampled_from(_SEPARATORS)), max_size=25
).map(lambda parts: "".join(word + separator for word, separator in parts))
any_texts = st.one_of(overlapping_texts, st.text(max_size=60), st.sampled_from(ADVERSARIAL))


def anchor_lines(name: str, field: str) -> list[str]:
    """One field of an anchor .jsonl file; skips the test when the anchors are not here."""
    path = ANCHORS / name
    skip_unless_present(path)
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f]


def near_duplicates(count: int, seed: int = 0) -> list[str]:
    """A synthetic corpus full of near-duplicates: random edits of a few dozen base texts."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(300)] + ["the", "a", "of", "to", "and"] * 20
    bases = [[rng.choice(words) for _ in range(rng.randint(4, 30))] for _ in range(40)]
    texts = []
    for _ in range(count):
        text = list(rng.choice(bases))
        for _ in range(rng.randint(0, 6)):
            position = rng.randrange(len(text) + 1)
            operation = rng.random()
            if operation < 0.4:
                text.insert(position, rng.choice(words))
            elif operation < 0.8 and position < len(text):
                del text[position]
            elif position < len(text):
                text[position] = rng.choice(words)
        texts.append(" ".join(text).capitalize() + rng.choice([".", "?", ""]))
    return texts


def reference_filter(pool: list[str], candidates: list[str], threshold: float) -> list[tuple]:
    """The paper's loop with rouge_score (pool pre-tokenized, as in Stanford Alpaca).

    Returns (accepted, max F, mean F or None) per candidate.
    """
    tokenize = SCORER._tokenizer.tokenize
    pool_tokens = [tokenize(text) for text in pool]
    results = []
    for candidate in candidates:
        tokens = tokenize(candidate)
        scores = [rouge_scorer._score_lcs(tokens, other).fmeasure for other in pool_tokens]
        max_score = max(scores, default=0.0)
        accepted = max_score <= threshold
        results.append(
            (accepted, max_score, float(np.mean(scores)) if accepted and scores else None)
        )
        if accepted:
            pool_tokens.append(tokens)
    return results


def brute_force_filter(pool: list[str], candidates: list[str], threshold: float) -> list[bool]:
    """The greedy decisions from the full score matrix: no pruning anywhere.

    Uses this package's pairwise scores, which test_rouge_metric checks against rouge_score.
    """
    vocabulary = Vocabulary()
    codes = [vocabulary.encode(SCORER._tokenizer.tokenize(text)) for text in pool + candidates]
    lengths = np.array([len(c) for c in codes])
    lcs = lcs_matrix(codes, codes)
    kept = list(range(len(pool)))
    decisions = []
    for i in range(len(pool), len(codes)):
        scores = fmeasures(lcs[i, kept], len(codes[i]), lengths[kept])
        accepted = not (scores > threshold).any()
        decisions.append(accepted)
        if accepted:
            kept.append(i)
    return decisions
