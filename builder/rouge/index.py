"""The instruction pool of a Self-Instruct run, and its exact, fast ROUGE-L near-duplicate filter.

`RougeIndex.filter` makes the paper's decisions (keep a candidate iff its ROUGE-L F-measure with
every pooled text is <= the threshold, candidates compared with those kept before them) with
`rouge_score`'s exact scores. Prefix filtering (`prefix.py`) finds the few pool texts that could
be above the threshold from token counts alone; only those get an LCS. A kept candidate then
needs its F with the whole pool anyway (the paper records the mean), so kept candidates are
scored in batches against the pool in C++ (rapidfuzz `cdist`), where batching pays most.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from self_instruct.rouge.prefix import ElementOrder, PrefixIndex
from self_instruct.rouge.scoring import fmeasures, lcs_matrix
from self_instruct.rouge.tokenizer import Tokenizer, Vocabulary, get_tokenizer

_BATCH = 256  # candidates per cdist call: amortises its per-call setup, bounds its memory


@dataclass
class Similarity:
    """How close one text is to the pool, in ROUGE-L F-measure."""

    max_score: float
    argmax: int  # pool position of the first most similar text; -1 for an empty pool
    mean_score: float  # over the whole pool it was compared with; nan for an empty pool
    most_similar: list[tuple[str, float]]  # best first, ties in pool order


@dataclass
class FilterDecision(Similarity):
    """A candidate's fate. For a rejected one, `mean_score` is nan and `most_similar` holds the
    pool texts above the threshold (all of them, up to `top_k`); `max_score` is exact either way."""

    accepted: bool


@dataclass
class IndexStats:
    """Work counters, for the benchmark: pairs met, and LCS computed to decide or to describe."""

    pairs: int = 0
    decision_lcs: int = 0
    provenance_lcs: int = 0


class _Encoded(NamedTuple):
    """A text as the index sees it: LCS input and prefix-filter elements."""

    codes: str  # one code point per token
    elements: np.ndarray  # (token, occurrence) element ids


class RougeIndex:
    """A growing pool of texts with exact ROUGE-L queries against it."""

    def __init__(self, tokenizer: str | Tokenizer = "rouge_score") -> None:
        self._tokenize = get_tokenizer(tokenizer)
        self._vocabulary = Vocabulary()
        self._order = ElementOrder()
        self._texts: list[str] = []
        self._encoded: list[_Encoded] = []
        self._codes: list[str] = []
        self._lengths = np.zeros(1024, dtype=np.int64)
        self._prefix_indexes: dict[float, PrefixIndex] = {}
        self.stats = IndexStats()

    def __len__(self) -> int:
        return len(self._texts)

    @property
    def texts(self) -> list[str]:
        """The pooled texts in the order they were added (do not modify)."""
        return self._texts

    def add(self, texts: Iterable[str]) -> None:
        """Pool `texts` unconditionally (the seed instructions)."""
        for text in texts:
            self._append(text, self._encode(text))

    def max_similarity(self, candidates: Sequence[str], top_k: int = 10) -> list[Similarity]:
        """Score each candidate against the whole pool; nothing is added."""
        codes = [self._vocabulary.encode(self._tokenize(text)) for text in candidates]
        return self._describe(codes, [len(self)] * len(codes), top_k)

    def filter(
        self,
        candidates: Sequence[str],
        threshold: float = 0.7,
        top_k: int = 10,
        provenance: bool = True,
    ) -> list[FilterDecision]:
        """Greedy near-duplicate filter: accept iff max F <= threshold; accepted ones join the pool.

        Candidate i is compared with the pool and with the candidates accepted before it. With
        `provenance=False` an accepted candidate is not scored against the whole pool (its
        max_score, mean_score are nan, argmax -1, most_similar empty): decisions only, with no
        LCS for the pairs that pruning rules out, for pools of millions.
        """
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        prefix_index = self._prefix_index(threshold)
        decisions: list[FilterDecision] = []
        accepted: list[tuple[int, str, int]] = []  # (candidate number, codes, pool size before)
        for number, text in enumerate(candidates):
            encoded = self._encode(text)
            rejection = self._rejection(encoded, prefix_index, top_k)
            decisions.append(rejection or _unscored_acceptance())
            if rejection is None:
                accepted.append((number, encoded.codes, len(self)))
                self._append(text, encoded)
        if provenance:
            described = self._describe([a[1] for a in accepted], [a[2] for a in accepted], top_k)
            for (number, _, _), similarity in zip(accepted, described, strict=True):
                decisions[number] = FilterDecision(**vars(similarity), accepted=True)
        return decisions

    def _encode(self, text: str) -> _Encoded:
        """Encode a text for the filter; re-sort the element order (and re-index) when due."""
        codes = self._vocabulary.encode(self._tokenize(text))
        encoded = _Encoded(codes, self._order.elements(codes))
        if self._order.reorder():
            for prefix_index in self._prefix_indexes.values():
                self._index_pool(prefix_index)
        return encoded

    def _append(self, text: str, encoded: _Encoded) -> None:
        position = len(self._texts)
        if position == len(self._lengths):
            self._lengths = np.concatenate([self._lengths, np.zeros_like(self._lengths)])
        self._texts.append(text)
        self._encoded.append(encoded)
        self._codes.append(encoded.codes)
        self._lengths[position] = len(encoded.codes)
        if self._prefix_indexes:
            ranks = self._order.sorted_ranks(encoded.elements)
            for prefix_index in self._prefix_indexes.values():
                prefix_index.add(position, ranks)

    def _prefix_index(self, threshold: float) -> PrefixIndex:
        """The prefix index for `threshold`, built over the pool on first use."""
        if threshold not in self._prefix_indexes:
            self._prefix_indexes[threshold] = self._index_pool(PrefixIndex(threshold))
        return self._prefix_indexes[threshold]

    def _index_pool(self, prefix_index: PrefixIndex) -> PrefixIndex:
        prefix_index.clear()
        for position, encoded in enumerate(self._encoded):
            prefix_index.add(position, self._order.sorted_ranks(encoded.elements))
        return prefix_index

    def _rejection(
        self, encoded: _Encoded, prefix_index: PrefixIndex, top_k: int
    ) -> FilterDecision | None:
        """The rejecting decision if some pool text scores above the threshold, else None."""
        self.stats.pairs += len(self)
        ranks = self._order.sorted_ranks(encoded.elements)
        positions = prefix_index.probe(ranks, self._lengths)
        if not len(positions):
            return None
        self.stats.decision_lcs += len(positions)
        codes = encoded.codes
        lcs = lcs_matrix([codes], [self._codes[p] for p in positions.tolist()])[0]
        scores = fmeasures(lcs, len(codes), self._lengths[positions])
        above = scores > prefix_index.threshold
        if not above.any():
            return None
        return FilterDecision(
            accepted=False,
            mean_score=float("nan"),
            **self._top(scores[above], positions[above], top_k),
        )

    def _describe(self, codes: list[str], pool_sizes: list[int], top_k: int) -> list[Similarity]:
        """Exact max, argmax, mean and top-k of each text against the first `pool_size` texts."""
        results = []
        for start in range(0, len(codes), _BATCH):
            batch, sizes = codes[start : start + _BATCH], pool_sizes[start : start + _BATCH]
            lcs = lcs_matrix(batch, self._codes[: max(sizes)])
            self.stats.provenance_lcs += sum(sizes)
            for row, text_codes, size in zip(lcs, batch, sizes, strict=True):
                scores = fmeasures(row[:size], len(text_codes), self._lengths[:size])
                results.append(self._similarity(scores, top_k))
        return results

    def _similarity(self, scores: np.ndarray, top_k: int) -> Similarity:
        if not len(scores):
            return Similarity(max_score=0.0, argmax=-1, mean_score=float("nan"), most_similar=[])
        top = self._top(scores, np.arange(len(scores)), top_k)
        return Similarity(mean_score=float(np.mean(scores)), **top)

    def _top(self, scores: np.ndarray, positions: np.ndarray, top_k: int) -> dict:
        """max_score, argmax and most_similar of `scores` (of the pool texts at `positions`)."""
        argmax = int(np.argmax(scores))  # the first maximum, as np.argmax in rouge_score
        ranked = _rank(scores, top_k)
        return {
            "max_score": float(scores[argmax]),
            "argmax": int(positions[argmax]),
            "most_similar": [(self._texts[positions[i]], float(scores[i])) for i in ranked],
        }


def _unscored_acceptance() -> FilterDecision:
    nan = float("nan")
    return FilterDecision(max_score=nan, argmax=-1, mean_score=nan, most_similar=[], accepted=True)


def _rank(scores: np.ndarray, top_k: int) -> np.ndarray:
    """Indices of the `top_k` highest scores, best first, ties in index order; O(n) selection."""
    if top_k <= 0:
        return np.empty(0, dtype=np.intp)
    if top_k < len(scores):
        kth = np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
        chosen = np.flatnonzero(scores >= kth)
    else:
        chosen = np.arange(len(scores))
    return chosen[np.lexsort((chosen, -scores[chosen]))][:top_k]
