"""Exact ROUGE-L for Self-Instruct: the `evaluate` metric module of this folder and the pool index.

`evaluate.load(METRIC_PATH)` loads the metric (`rouge.py`, card `README.md`) offline;
`RougeIndex` is the near-duplicate filter of the pipeline. Both score exactly as
`rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)`.
"""

from pathlib import Path

from self_instruct.rouge.index import FilterDecision, IndexStats, RougeIndex
from self_instruct.rouge.provenance import Similarity
from self_instruct.rouge.scoring import Score, rouge_l
from self_instruct.rouge.tokenizer import (
    TOKENIZERS,
    get_tokenizer,
    tokenize_rouge_score,
    tokenize_unicode,
)

METRIC_PATH = str(Path(__file__).resolve().parent)

__all__ = [
    "METRIC_PATH",
    "TOKENIZERS",
    "FilterDecision",
    "IndexStats",
    "RougeIndex",
    "Score",
    "Similarity",
    "get_tokenizer",
    "rouge_l",
    "tokenize_rouge_score",
    "tokenize_unicode",
]
