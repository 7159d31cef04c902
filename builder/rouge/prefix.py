"""Prefix filtering: find every pool text that could score above a threshold, without any LCS.

ROUGE-L F is 2 * LCS / (m + n) and LCS <= the overlap of the two token multisets <= min(m, n).
F > t therefore needs an overlap of more than t * n / (2 - t) tokens, whatever the other length
(put LCS <= m into 2 * LCS > t * (m + n)). Write each text as a set of elements, the k-th
occurrence of a token being its own element, sorted in one global order: two sets sharing at
least `a` elements share one among the first `len - a + 1` of each (the prefix filtering lemma
of set-similarity joins). Indexing only those prefixes, and probing with the candidate's, finds
every pair that can be above the threshold. The first shared element, at positions i and j of
the two sorted sets, bounds the overlap by min(m - i, n - j) (PPJoin's positional filter), which
rules out most of the pairs found.

Both filters work for any global order, and work best with rare elements first (short posting
lists, early first matches). `ElementOrder` sorts by document frequency among the texts seen so
far and re-sorts when their number has doubled (the prefix indexes are then rebuilt): amortised
linear work, and the order is fixed between re-sorts, as the lemma requires.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

from self_instruct.rouge.scoring import fmeasures

_FIRST_REORDER = 512  # texts seen before the first frequency order; newest-first until then


def min_overlap(length: int, threshold: float) -> int:
    """A lower bound on the overlap any text needs with a `length`-token text to score > t.

    One below the exact bound, floor(t * n / (2 - t)) + 1, so that float rounding of F at a
    score exactly on the threshold can never hide a pair.
    """
    return max(1, math.floor(threshold * length / (2 - threshold)))


def prefix_length(length: int, threshold: float) -> int:
    """How many leading elements of a `length`-token text the lemma needs (0 for no tokens)."""
    return max(0, length - min_overlap(length, threshold) + 1)


class ElementOrder:
    """Numbers (token, occurrence) elements and keeps the global order they are sorted in."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, int], int] = {}
        self._frequency = np.zeros(1024, dtype=np.int64)  # texts seen holding each element
        self._rank = np.zeros(1024, dtype=np.int64)  # position in the global order
        self._newest_rank = 0  # elements new since the last re-sort go first, newest first
        self._seen = 0
        self._seen_at_reorder = 0

    def elements(self, codes: str) -> np.ndarray:
        """The element ids of one text (a code-point string); counts the text as seen."""
        seen: dict[str, int] = {}
        ids = self._ids
        out = []
        for code in codes:
            occurrence = seen.get(code, 0)
            seen[code] = occurrence + 1
            key = (code, occurrence)
            if key not in ids:
                self._new_element(len(ids))
                ids[key] = len(ids)
            out.append(ids[key])
        elements = np.array(out, dtype=np.int64)
        self._frequency[elements] += 1
        self._seen += 1
        return elements

    def sorted_ranks(self, elements: np.ndarray) -> np.ndarray:
        """The ranks of a text's elements in the global order: its sorted set, rarest first."""
        return np.sort(self._rank[elements])

    def reorder(self) -> bool:
        """Re-sort by frequency once the texts seen have doubled; say whether it did."""
        if self._seen < max(_FIRST_REORDER, 2 * self._seen_at_reorder):
            return False
        count = len(self._ids)
        by_frequency = np.lexsort((-np.arange(count), self._frequency[:count]))
        self._rank[by_frequency] = np.arange(count)
        self._newest_rank = 0
        self._seen_at_reorder = self._seen
        return True

    def _new_element(self, element: int) -> None:
        if element == len(self._rank):
            self._rank = np.concatenate([self._rank, np.zeros_like(self._rank)])
            self._frequency = np.concatenate([self._frequency, np.zeros_like(self._frequency)])
        self._newest_rank -= 1
        self._rank[element] = self._newest_rank


class PrefixIndex:
    """Posting lists of prefix elements for one threshold; `probe` returns possible matches."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._postings: dict[int, array] = {}  # rank -> flat (position, index in its prefix)

    def clear(self) -> None:
        self._postings.clear()

    def add(self, position: int, ranks: np.ndarray) -> None:
        """Index the pool text at `position` by its prefix (`ranks` as `sorted_ranks` gives)."""
        postings = self._postings
        for j, rank in enumerate(ranks[: prefix_length(len(ranks), self.threshold)].tolist()):
            if rank not in postings:
                postings[rank] = array("q")
            postings[rank].extend((position, j))

    def probe(self, ranks: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Sorted positions of the pool texts (of token counts `lengths`) that pass both filters."""
        hits, probe_index, counts = array("q"), [], []
        for i, rank in enumerate(ranks[: prefix_length(len(ranks), self.threshold)].tolist()):
            posting = self._postings.get(rank)
            if posting is not None:
                hits.extend(posting)
                probe_index.append(i)
                counts.append(len(posting) // 2)
        if not hits:
            return np.empty(0, dtype=np.int64)
        pairs = np.frombuffer(hits, dtype=np.int64).reshape(-1, 2)
        order = np.argsort(pairs[:, 0], kind="stable")  # by pool text, then probe order
        positions = pairs[order, 0]
        ends = np.flatnonzero(np.diff(positions, append=-1))  # each text's last shared element
        shared = np.diff(ends, prepend=-1)  # shared elements found in the prefixes
        last_i = np.repeat(probe_index, counts)[order[ends]]
        last_j = pairs[order[ends], 1]
        positions, length, other_lengths = positions[ends], len(ranks), lengths[positions[ends]]
        # Elements before the last shared one are all found; those after it fit in both rests.
        overlap = shared + np.minimum(length - 1 - last_i, other_lengths - 1 - last_j)
        return positions[fmeasures(overlap, length, other_lengths) > self.threshold]
