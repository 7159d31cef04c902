"""The instruction pool of a Self-Instruct run, and its exact, fast ROUGE-L near-duplicate filter.

`RougeIndex.filter` makes the paper's decisions (keep a candidate iff its ROUGE-L F-measure with
every pooled text is <= the threshold, candidates compared with those kept before them) with
`rouge_score`'s exact scores. Candidates are decided in batches: prefix filtering (`prefix.py`)
finds, from token counts alone, the few pairs that could be above the threshold, both against the
pool and inside the batch; only those get an LCS (rapidfuzz, C++), and a short sequential pass
then applies the greedy rule. A kept candidate needs its F with the whole pool anyway (the paper
records the mean): `provenance.py` scores kept candidates against the whole pool, in batches, or
against a bounded sample of it (`provenance_pool`) for a cost per candidate that stays flat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from self_instruct.rouge.prefix import ElementOrder, PrefixIndex, RankedSets, owners
from self_instruct.rouge.provenance import Pool, Similarity, sample_size, similarities
from self_instruct.rouge.scoring import fmeasures, lcs_matrix, lcs_pairs
from self_instruct.rouge.tokenizer import Tokenizer, Vocabulary, get_tokenizer

_BATCH = 64  # candidates decided together: amortises numpy's per-call cost, bounds batch pairs


@dataclass
class FilterDecision(Similarity):
    """A candidate's fate. For a rejected one, `mean_score` is nan and `most_similar` holds the
    pool texts above the threshold (all of them, up to `top_k`), its `max_score` over the whole
    pool; an accepted one's fields are over the texts it was described against."""

    accepted: bool


@dataclass
class IndexStats:
    """Work counters, for the benchmark: pairs met, and LCS computed to decide or to describe."""

    pairs: int = 0
    decision_lcs: int = 0
    provenance_lcs: int = 0


@dataclass
class _Batch:
    """Texts as the index sees them: LCS input and prefix-filter sets."""

    codes: list[str]  # one code point per token
    elements: np.ndarray  # (token, occurrence) element ids, text after text
    sets: RankedSets

    def select(self, mask: np.ndarray) -> _Batch:
        codes = [code for code, keep in zip(self.codes, mask.tolist(), strict=True) if keep]
        elements = self.elements[mask[owners(self.sets.lengths)]]
        return _Batch(codes, elements, self.sets.select(mask))


class _Hits(NamedTuple):
    """Pairs scoring above the threshold: candidate number, the other text, F-measure."""

    text: np.ndarray
    other: np.ndarray
    score: np.ndarray


class _Column:
    """A growing int64 column: amortised O(1) appends, a numpy view for reads."""

    def __init__(self) -> None:
        self._data, self._size = np.zeros(1024, dtype=np.int64), 0

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._size]

    def extend(self, values: np.ndarray) -> None:
        size = self._size + len(values)
        if size > len(self._data):
            self._data = np.resize(self._data, max(size, 2 * len(self._data)))
        self._data[self._size : size] = values
        self._size = size


class RougeIndex:
    """A growing pool of texts with exact ROUGE-L queries against it."""

    def __init__(self, tokenizer: str | Tokenizer = "rouge_score") -> None:
        self._tokenize = get_tokenizer(tokenizer)
        self._vocabulary = Vocabulary()
        self._order = ElementOrder()
        self._texts: list[str] = []
        self._codes: list[str] = []
        self._lengths = _Column()
        self._elements = _Column()  # element ids of the pool texts, text after text
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
        texts = list(texts)
        self._append(texts, self._encode(texts))

    def max_similarity(self, candidates: Sequence[str], top_k: int = 10) -> list[Similarity]:
        """Score each candidate against the whole pool; nothing is added."""
        codes = [self._vocabulary.encode(self._tokenize(text)) for text in candidates]
        return self._describe(codes, [len(self)] * len(codes), top_k, cap=0)

    def _describe(
        self, codes: list[str], pool_sizes: list[int], top_k: int, cap: int
    ) -> list[Similarity]:
        self.stats.provenance_lcs += sum(sample_size(size, cap) for size in pool_sizes)
        pool = Pool(self._texts, self._codes, self._lengths.values)
        return similarities(codes, pool_sizes, pool, top_k, cap)

    def pool_rejects(self, candidates: Sequence[str], threshold: float = 0.7) -> list[bool]:
        """Whether each candidate already scores above `threshold` with a pooled text, so that
        `filter` will reject it whatever joins the pool first. Nothing is added."""
        if not candidates:
            return []
        hits = self._pool_hits(self._encode(list(candidates)), self._prefix_index(threshold))
        rejected = np.zeros(len(candidates), dtype=bool)
        rejected[hits.text] = True
        return rejected.tolist()

    def filter(
        self,
        candidates: Sequence[str],
        threshold: float = 0.7,
        top_k: int = 10,
        provenance: bool = True,
        provenance_pool: int = 0,
    ) -> list[FilterDecision]:
        """Greedy near-duplicate filter: accept iff max F <= threshold; accepted ones join the pool.

        Candidate i is compared with the pool and with the candidates accepted before it: the
        decisions are exact whatever the options below. An accepted candidate is described
        (max, argmax, mean, top k) against the n pool texts before it; with `provenance_pool`
        > 0 and n beyond it, against the positions j % s == 0 only, s the smallest power of two
        with ceil(n / s) <= provenance_pool: a function of n alone, so batching cannot change
        it. With `provenance=False` an accepted candidate is not described (its max_score,
        mean_score are nan, argmax -1, most_similar empty): decisions only, with no LCS for the
        pairs that pruning rules out, for pools of millions.
        """
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if provenance_pool < 0:
            raise ValueError(f"provenance_pool must be >= 0, got {provenance_pool}")
        prefix_index = self._prefix_index(threshold)
        cap = provenance_pool if provenance else None
        decisions: list[FilterDecision] = []
        for start in range(0, len(candidates), _BATCH):
            texts = list(candidates[start : start + _BATCH])
            decisions += self._filter_batch(texts, prefix_index, top_k, cap)
        return decisions

    def _filter_batch(
        self, texts: list[str], prefix_index: PrefixIndex, top_k: int, cap: int | None
    ) -> list[FilterDecision]:
        """One batch's decisions; `cap` is the provenance pool, None for no provenance."""
        batch, pool_size = self._encode(texts), len(self)
        pool_hits = self._pool_hits(batch, prefix_index)
        batch_hits = self._batch_hits(batch, pool_hits, prefix_index.threshold)
        accepted = _greedy(len(texts), pool_hits, batch_hits)
        positions = pool_size + np.cumsum(accepted) - 1  # pool position of each accepted text
        self.stats.pairs += int((positions + 1 - accepted).sum())  # pool size each one met
        self._append(
            [t for t, a in zip(texts, accepted.tolist(), strict=True) if a], batch.select(accepted)
        )
        decisions = self._rejections(pool_hits, batch_hits, accepted, positions, top_k)
        kept = np.flatnonzero(accepted).tolist()
        if cap is not None:
            codes, sizes = [batch.codes[i] for i in kept], positions[accepted].tolist()
            for i, similarity in zip(kept, self._describe(codes, sizes, top_k, cap), strict=True):
                decisions[i] = FilterDecision(**vars(similarity), accepted=True)
        else:
            decisions.update((i, _unscored_acceptance()) for i in kept)
        return [decisions[i] for i in range(len(texts))]

    def _encode(self, texts: list[str]) -> _Batch:
        """Encode texts for the filter; re-sort the element order (and re-index) when due."""
        codes = [self._vocabulary.encode(self._tokenize(text)) for text in texts]
        elements, lengths = self._order.elements(codes)
        if self._order.reorder():
            for prefix_index in self._prefix_indexes.values():
                self._index_pool(prefix_index)
        return _Batch(codes, elements, self._order.sorted_ranks(elements, lengths))

    def _append(self, texts: list[str], batch: _Batch) -> None:
        positions = np.arange(len(self), len(self) + len(texts))
        self._texts += texts
        self._codes += batch.codes
        self._lengths.extend(batch.sets.lengths)
        self._elements.extend(batch.elements)
        for prefix_index in self._prefix_indexes.values():
            prefix_index.add(positions, batch.sets)

    def _prefix_index(self, threshold: float) -> PrefixIndex:
        """The prefix index for `threshold`, built over the pool on first use."""
        if threshold not in self._prefix_indexes:
            self._prefix_indexes[threshold] = self._index_pool(PrefixIndex(threshold))
        return self._prefix_indexes[threshold]

    def _index_pool(self, prefix_index: PrefixIndex) -> PrefixIndex:
        prefix_index.clear()
        sets = self._order.sorted_ranks(self._elements.values, self._lengths.values)
        prefix_index.add(np.arange(len(self)), sets)
        return prefix_index

    def _pool_hits(self, batch: _Batch, prefix_index: PrefixIndex) -> _Hits:
        """The (candidate, pool text) pairs above the threshold, by candidate then position."""
        text, other = prefix_index.probe(batch.sets, self._lengths.values)
        others = [self._codes[position] for position in other.tolist()]
        return self._above(batch, text, other, others, prefix_index.threshold)

    def _batch_hits(self, batch: _Batch, pool_hits: _Hits, threshold: float) -> _Hits:
        """The (candidate, earlier candidate) pairs of one batch above the threshold.

        Only earlier candidates without a pool hit can have joined the pool: every candidate is
        compared with those few, in one call.
        """
        survivors = np.ones(len(batch.codes), dtype=bool)
        survivors[pool_hits.text] = False
        survivors = np.flatnonzero(survivors)
        lcs = lcs_matrix(batch.codes, [batch.codes[number] for number in survivors.tolist()])
        self.stats.decision_lcs += lcs.size
        lengths = batch.sets.lengths
        scores = fmeasures(lcs, lengths[:, None], lengths[survivors])
        earlier = survivors < np.arange(len(lengths))[:, None]
        text, other = np.nonzero(earlier & (scores > threshold))  # by candidate, then earlier
        return _Hits(text, survivors[other], scores[text, other])

    def _above(
        self,
        batch: _Batch,
        text: np.ndarray,
        other: np.ndarray,
        others: list[str],
        threshold: float,
    ) -> _Hits:
        """The pairs (candidate `text`, the `other` text of code points `others`) above t."""
        self.stats.decision_lcs += len(text)
        lcs = lcs_pairs([batch.codes[number] for number in text.tolist()], others)
        other_lengths = np.fromiter(map(len, others), dtype=np.int64, count=len(others))
        scores = fmeasures(lcs, batch.sets.lengths[text], other_lengths)
        above = scores > threshold
        return _Hits(text[above], other[above], scores[above])

    def _rejections(
        self,
        pool_hits: _Hits,
        batch_hits: _Hits,
        accepted: np.ndarray,
        positions: np.ndarray,
        top_k: int,
    ) -> dict[int, FilterDecision]:
        """The decision of each rejected candidate: its hits in the pool, best first."""
        from_kept = accepted[batch_hits.other]  # only kept candidates joined the pool
        text = np.concatenate([pool_hits.text, batch_hits.text[from_kept]])
        other = np.concatenate([pool_hits.other, positions[batch_hits.other[from_kept]]])
        score = np.concatenate([pool_hits.score, batch_hits.score[from_kept]])
        order = np.lexsort((other, -score, text))  # best first, ties in pool order
        text, other, score = text[order].tolist(), other[order].tolist(), score[order].tolist()
        decisions, start = {}, 0
        for end in [] if not text else [*np.flatnonzero(np.diff(text)).tolist(), len(text) - 1]:
            top = range(start, min(end + 1, start + max(top_k, 0)))
            decisions[text[start]] = FilterDecision(
                max_score=score[start],
                argmax=other[start],
                mean_score=float("nan"),
                most_similar=[(self._texts[other[i]], score[i]) for i in top],
                accepted=False,
            )
            start = end + 1
        return decisions


def _greedy(count: int, pool_hits: _Hits, batch_hits: _Hits) -> np.ndarray:
    """Which candidates of a batch the paper's sequential loop accepts.

    A candidate with a pool hit is out; one whose batch hit is an accepted earlier candidate is
    out too. Batch hits come by candidate, so each earlier candidate is decided when it counts.
    """
    accepted = np.ones(count, dtype=bool)
    accepted[pool_hits.text] = False
    verdict = accepted.tolist()
    for text, other in zip(batch_hits.text.tolist(), batch_hits.other.tolist(), strict=True):
        if verdict[other]:
            verdict[text] = False
    return np.array(verdict, dtype=bool)


def _unscored_acceptance() -> FilterDecision:
    nan = float("nan")
    return FilterDecision(max_score=nan, argmax=-1, mean_score=nan, most_similar=[], accepted=True)
