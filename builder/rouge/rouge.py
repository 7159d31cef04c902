# Copyright 2025 The self-instruct authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""ROUGE-L, bit-identical to `rouge_score`, as an `evaluate` metric module."""

import datasets
import evaluate
import numpy as np

from self_instruct import CITATION
from self_instruct.rouge.scoring import Score, rouge_l
from self_instruct.rouge.tokenizer import get_tokenizer

_ROUGE_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    month = jul,
    year = "2004",
    address = "Barcelona, Spain",
    publisher = "Association for Computational Linguistics",
    url = "https://www.aclweb.org/anthology/W04-1013",
    pages = "74--81",
}
"""
_CITATION = _ROUGE_CITATION + CITATION

_DESCRIPTION = """\
ROUGE-L scores a prediction against a reference by their longest common subsequence (LCS) of
tokens: precision = LCS / prediction length, recall = LCS / reference length, and the F-measure
is their harmonic mean. Self-Instruct drops a generated instruction whose ROUGE-L F-measure with
any instruction already kept is above 0.7.

This module gives exactly the scores of Google Research's `rouge_score`
(`RougeScorer(["rougeL"], use_stemmer=False)`), bit for bit: same tokenizer (lower-cased runs of
ASCII letters and digits), same empty-text rule, same floating-point formulas. The LCS is
computed bit-parallel in C++ (rapidfuzz) instead of rouge_score's pure-Python table.
"""

_KWARGS_DESCRIPTION = """
Computes ROUGE-L for each prediction against its reference(s).
Args:
    predictions: list of predictions to score, one string each.
    references: one reference string per prediction, or a list of reference strings per
        prediction; with several, the reference with the highest F-measure counts (as in
        `rouge_score.RougeScorer.score_multi` and evaluate's `rouge`).
    rouge_types: only `["rougeL"]` (the default), accepted for compatibility with `rouge`.
    use_aggregator: if True (default), return the mean of each score over the examples; unlike
        `rouge`'s bootstrap estimate it is deterministic. If False, return per-example lists.
    tokenizer: `"rouge_score"` (default, exact), `"unicode"` (words in any script, one token per
        CJK character; for multilingual data) or a callable from a string to a list of tokens.
Returns:
    rougeL: F-measure,
    rougeL_precision: precision,
    rougeL_recall: recall.
Examples:

    >>> import evaluate
    >>> from self_instruct.rouge import METRIC_PATH
    >>> rouge_l = evaluate.load(METRIC_PATH)
    >>> predictions = ["Write a poem about the sea.", "List three prime numbers."]
    >>> references = ["Write a short poem about the sea.", "Name three colours."]
    >>> results = rouge_l.compute(predictions=predictions, references=references)
    >>> print({name: round(value, 4) for name, value in results.items()})
    {'rougeL': 0.6044, 'rougeL_precision': 0.625, 'rougeL_recall': 0.5952}
"""

_ROUGE_TYPE = "rougeL"


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RougeL(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Sequence(datasets.Value("string", id="sequence")),
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Value("string", id="sequence"),
                    }
                ),
            ],
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=[
                "https://aclanthology.org/W04-1013",
                "https://aclanthology.org/2023.acl-long.754",
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        rouge_types=None,
        use_aggregator=True,
        tokenizer="rouge_score",
    ):
        if rouge_types not in (None, [_ROUGE_TYPE]):
            raise ValueError(f"This module computes only {[_ROUGE_TYPE]}, got {rouge_types}.")
        tokenize = get_tokenizer(tokenizer)
        scores = [
            _score_multi(ref if isinstance(ref, list) else [ref], pred, tokenize)
            for ref, pred in zip(references, predictions, strict=True)
        ]
        columns = {
            _ROUGE_TYPE: [s.fmeasure for s in scores],
            f"{_ROUGE_TYPE}_precision": [s.precision for s in scores],
            f"{_ROUGE_TYPE}_recall": [s.recall for s in scores],
        }
        if use_aggregator:
            return {name: float(np.mean(values)) for name, values in columns.items()}
        return columns


def _score_multi(references, prediction, tokenize) -> Score:
    """The score against the reference with the highest F-measure, the first on ties."""
    prediction_tokens = tokenize(prediction)
    scores = [rouge_l(tokenize(reference), prediction_tokens) for reference in references]
    return scores[int(np.argmax([s.fmeasure for s in scores]))]
