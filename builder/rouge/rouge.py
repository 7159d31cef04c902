"""ROUGE-L as an `evaluate` metric: the scores of `rouge_score`, bit for bit, from a C++ LCS.

ROUGE-L compares a prediction with a reference through the longest common subsequence (LCS) of
their tokens: precision is LCS / prediction length, recall is LCS / reference length, and the
F-measure is their harmonic mean. Self-Instruct keeps a generated instruction only if its
F-measure with every instruction already in its pool is at most 0.7.

The scores equal those of Google Research's `rouge_score` (`RougeScorer(["rougeL"],
use_stemmer=False)`) to the last bit: the same tokens (lower-cased runs of ASCII letters and
digits), the same 0 for a text without tokens, the same floating-point operations in the same
order. Only the LCS is computed differently: bit-parallel in C++ (rapidfuzz), instead of
rouge_score's pure-Python table.
"""

import inspect

import datasets
import evaluate
import numpy as np

from self_instruct.about import CITATION, ROUGE_CITATION
from self_instruct.rouge.index import RougeIndex
from self_instruct.rouge.scoring import Score, rouge_l
from self_instruct.rouge.tokenizer import Tokenizer, get_tokenizer

_ROUGE_TYPE = "rougeL"
_TEXT = datasets.Value("string")
# A prediction comes with one reference or with a list of them (the best counts): evaluate picks
# the first of these schemas that the first example fits.
_INPUT_SCHEMAS = [
    datasets.Features({"predictions": _TEXT, "references": references})
    for references in (datasets.Sequence(_TEXT), _TEXT)
]


class RougeL(evaluate.Metric):
    """ROUGE-L of each prediction against its reference, or against the best of its references.

    Args:
        predictions (`list[str]`): the texts to score.
        references (`list[str]` or `list[list[str]]`): one reference per prediction, or several;
            with several, the one with the highest F-measure counts, the first on ties, as
            `rouge_score`'s `score_multi` and evaluate's `rouge` choose.
        rouge_types (`list[str]`, *optional*): only `["rougeL"]`, accepted so that calls written
            for evaluate's `rouge` run unchanged.
        use_aggregator (`bool`, defaults to `True`): return the mean of each score over the
            examples (deterministic, unlike the bootstrap estimate of evaluate's `rouge`);
            `False` returns one score per example.
        use_stemmer (`bool`, defaults to `False`): accepted so that calls written for
            evaluate's `rouge` run unchanged; this module never stems (the paper scores with
            `use_stemmer=False`), so `True` is refused with a ValueError rather than ignored.
        tokenizer (`str` or callable, defaults to `"rouge_score"`): `"rouge_score"` (exact),
            `"unicode"` (words in any script, one token per CJK character; for multilingual
            data) or a function from a text to its list of tokens.

    Returns:
        `dict`: `rougeL` (the F-measure), `rougeL_precision` and `rougeL_recall`: floats, or
        lists of one float per example with `use_aggregator=False`.

    Example, two generated instructions against the seeds they resemble most:

        >>> import evaluate
        >>> from self_instruct.rouge import METRIC_PATH
        >>> rouge_l = evaluate.load(METRIC_PATH)
        >>> predictions = ["Write a poem about the sea.", "List three prime numbers."]
        >>> references = ["Write a short poem about the sea.", "Name three colours."]
        >>> results = rouge_l.compute(predictions=predictions, references=references)
        >>> print({name: round(value, 4) for name, value in results.items()})
        {'rougeL': 0.6044, 'rougeL_precision': 0.625, 'rougeL_recall': 0.5952}
    """

    def _info(self) -> evaluate.MetricInfo:
        # The module docstring says what the metric is, the class docstring how to call it.
        return evaluate.MetricInfo(
            description=__doc__,
            citation=ROUGE_CITATION + CITATION,
            inputs_description=inspect.getdoc(RougeL),
            features=_INPUT_SCHEMAS,
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
        use_stemmer=False,
        tokenizer="rouge_score",
    ):
        if rouge_types not in (None, [_ROUGE_TYPE]):
            raise ValueError(f"This module computes only {[_ROUGE_TYPE]}, got {rouge_types}.")
        if use_stemmer:
            raise ValueError(
                "This module never stems (the paper scores with use_stemmer=False): "
                "drop use_stemmer=True, or use evaluate's own `rouge` for stemmed scores."
            )
        tokenize = get_tokenizer(tokenizer)
        lists = [ref if isinstance(ref, list) else [ref] for ref in references]
        scores = _score_all(predictions, lists, tokenize)
        columns = {
            _ROUGE_TYPE: [s.fmeasure for s in scores],
            f"{_ROUGE_TYPE}_precision": [s.precision for s in scores],
            f"{_ROUGE_TYPE}_recall": [s.recall for s in scores],
        }
        if use_aggregator:
            return {name: float(np.mean(values)) for name, values in columns.items()}
        return columns


def _score_all(
    predictions: list[str], references: list[list[str]], tokenize: Tokenizer
) -> list[Score]:
    """The score of each prediction against the best of its references.

    Predictions sharing one list of references (the usual many-references call: every output
    against one corpus) are scored together on a `RougeIndex` over that list, as the pool filter
    scores candidates: LCS in C++ for the whole block at once instead of a Python loop per pair.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for number, options in enumerate(references):
        groups.setdefault(tuple(options), []).append(number)
    scores: list[Score | None] = [None] * len(predictions)
    for options, numbers in groups.items():
        best = _best_references(options, [predictions[n] for n in numbers], tokenize)
        for number, choice in zip(numbers, best, strict=True):
            scores[number] = rouge_l(tokenize(options[choice]), tokenize(predictions[number]))
    return scores


def _best_references(
    references: tuple[str, ...], predictions: list[str], tokenize: Tokenizer
) -> list[int]:
    """For each prediction, the reference with the highest F-measure, the first on ties (as
    `rouge_score`'s `score_multi`)."""
    if not references:
        raise ValueError("A prediction has an empty list of references: give at least one.")
    if len(references) == 1:
        return [0] * len(predictions)
    index = RougeIndex(tokenize)
    index.add(references)
    return [similarity.argmax for similarity in index.max_similarity(predictions, top_k=0)]
