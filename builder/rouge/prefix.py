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

Everything works on a batch of texts at once, in numpy: the fixed cost of a numpy call is paid
per batch, not per text, and that fixed cost is what dominates on instruction-length texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from self_instruct.rouge.scoring import fmeasures

_FIRST_REORDER = 512  # texts seen before the first frequency order; newest-first until then
_EMPTY = np.empty(0, dtype=np.int64)
_POINT_BITS = 21  # code points are below 0x110000 < 2**21
_POINT_MASK = (1 << _POINT_BITS) - 1
_RANK_OFFSET = 1 << 31  # ranks run from minus to plus the number of elements


def min_overlap(length, threshold: float):
    """A lower bound on the overlap any text needs with a `length`-token text to score > t.

    One below the exact bound, floor(t * n / (2 - t)) + 1, so that float rounding of F at a
    score exactly on the threshold can never hide a pair. `length` may be an array.
    """
    return np.maximum(1, np.floor(threshold * np.asarray(length) / (2 - threshold))).astype(
        np.int64
    )


def prefix_lengths(lengths: np.ndarray, threshold: float) -> np.ndarray:
    """How many leading elements of each text the lemma needs (0 for no tokens)."""
    return np.maximum(0, lengths - min_overlap(lengths, threshold) + 1)


def owners(lengths: np.ndarray) -> np.ndarray:
    """For texts laid end to end, the text number of each of their items."""
    return np.repeat(np.arange(len(lengths)), lengths)


def offsets_within(lengths: np.ndarray) -> np.ndarray:
    """For texts laid end to end, the position of each item inside its text."""
    starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) - np.repeat(starts, lengths)


@dataclass
class RankedSets:
    """Texts as sorted sets of element ranks, laid end to end: what both filters work on."""

    ranks: np.ndarray  # each text's element ranks ascending (rarest first), text after text
    lengths: np.ndarray  # elements (= tokens) per text

    def prefixes(self, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rank, text number, index in the sorted set) of every prefix element, text by text."""
        text, index = owners(self.lengths), offsets_within(self.lengths)
        keep = index < prefix_lengths(self.lengths, threshold)[text]
        return self.ranks[keep], text[keep], index[keep]

    def select(self, texts: np.ndarray) -> RankedSets:
        """The sets of the texts where the boolean mask `texts` is set, in order."""
        return RankedSets(self.ranks[texts[owners(self.lengths)]], self.lengths[texts])


class ElementOrder:
    """Numbers (token, occurrence) elements and keeps the global order they are sorted in."""

    def __init__(self) -> None:
        self._keys = _EMPTY  # (code point << 32 | occurrence) of every element, sorted
        self._key_ids = _EMPTY  # the element id of each key
        self._frequency = np.zeros(1024, dtype=np.int64)  # texts seen holding each element
        self._rank = np.zeros(1024, dtype=np.int64)  # position in the global order
        self._newest_rank = 0  # elements new since the last re-sort go first, newest first
        self._seen = 0
        self._seen_at_reorder = 0

    def elements(self, codes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The element ids of texts (code-point strings), text after text, and their lengths.

        Counts the texts as seen. Within a text the ids come in no particular order.
        """
        lengths = np.fromiter(map(len, codes), dtype=np.int64, count=len(codes))
        points = np.frombuffer("".join(codes).encode("utf-32-le", "surrogatepass"), np.uint32)
        # Sorting (text, code point) makes repeats of a token adjacent, to number occurrences.
        tokens = np.sort((owners(lengths) << _POINT_BITS) | points)
        repeat = np.zeros(len(tokens), dtype=bool)
        repeat[1:] = tokens[1:] == tokens[:-1]
        index = np.arange(len(tokens))
        occurrence = index - np.maximum.accumulate(np.where(repeat, 0, index))
        ids = self._ids(((tokens & _POINT_MASK) << 32) | occurrence)
        self._frequency[: self._count] += np.bincount(ids, minlength=self._count)
        self._seen += len(codes)
        return ids, lengths

    def sorted_ranks(self, elements: np.ndarray, lengths: np.ndarray) -> RankedSets:
        """The texts of `elements` (as `elements` gives them) as sets sorted in the global order."""
        ranks = self._rank[elements] + _RANK_OFFSET  # >= 0: (text, rank) packs into one int64
        packed = np.sort((owners(lengths) << 32) | ranks)
        return RankedSets((packed & 0xFFFFFFFF) - _RANK_OFFSET, lengths)

    def reorder(self) -> bool:
        """Re-sort by frequency once the texts seen have doubled; say whether it did."""
        if self._seen < max(_FIRST_REORDER, 2 * self._seen_at_reorder):
            return False
        count = self._count
        by_frequency = np.lexsort((-np.arange(count), self._frequency[:count]))
        self._rank[by_frequency] = np.arange(count)
        self._newest_rank = 0
        self._seen_at_reorder = self._seen
        return True

    @property
    def _count(self) -> int:
        return len(self._keys)

    def _ids(self, keys: np.ndarray) -> np.ndarray:
        """The element id of each key, numbering the keys never seen before."""
        at = np.searchsorted(self._keys, keys)
        known = np.zeros(len(keys), dtype=bool)
        if self._count:
            known = self._keys[np.minimum(at, self._count - 1)] == keys
        if not known.all():
            self._new_elements(keys[~known])
            at = np.searchsorted(self._keys, keys)
        return self._key_ids[at]

    def _new_elements(self, keys: np.ndarray) -> None:
        keys = np.sort(keys)
        keys = keys[np.diff(keys, prepend=-1) != 0]
        first, count = self._count, self._count + len(keys)
        if count > len(self._rank):
            size = max(count, 2 * len(self._rank))
            self._rank = np.resize(self._rank, size)
            self._frequency = np.concatenate(
                [self._frequency, np.zeros(size - len(self._frequency), dtype=np.int64)]
            )
        self._rank[first:count] = self._newest_rank - 1 - np.arange(len(keys))
        self._newest_rank -= len(keys)
        at = np.searchsorted(self._keys, keys)
        self._keys = np.insert(self._keys, at, keys)
        self._key_ids = np.insert(self._key_ids, at, np.arange(first, count))


class PrefixIndex:
    """Posting lists of prefix elements for one threshold; `probe` returns possible matches."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.clear()

    def clear(self) -> None:
        # One posting per prefix element of a pool text, sorted by rank: a posting list is a run.
        self._ranks, self._positions, self._index = _EMPTY, _EMPTY, _EMPTY

    def add(self, positions: np.ndarray, sets: RankedSets) -> None:
        """Index the pool texts at `positions` by their prefixes."""
        ranks, text, index = sets.prefixes(self.threshold)
        order = np.argsort(ranks, kind="stable")
        ranks = ranks[order]
        at = np.searchsorted(self._ranks, ranks, side="right")
        self._ranks = np.insert(self._ranks, at, ranks)
        self._positions = np.insert(self._positions, at, positions[text[order]])
        self._index = np.insert(self._index, at, index[order])

    def probe(self, sets: RankedSets, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(text number in `sets`, pool position) of every pair that passes both filters.

        `lengths` are the token counts of the pool texts, by position.
        """
        ranks, text, index = sets.prefixes(self.threshold)
        first = np.searchsorted(self._ranks, ranks, side="left")
        counts = np.searchsorted(self._ranks, ranks, side="right") - first
        # One match per (prefix element, posting of its rank), in prefix order.
        entry = owners(counts)
        posting = np.arange(len(entry)) + (first - (np.cumsum(counts) - counts))[entry]
        other = self._positions[posting]
        # Group the matches by pair; in each group the last one is the last shared element.
        key = text[entry] * (int(other.max(initial=0)) + 1) + other
        order = np.argsort(key, kind="stable")
        last = np.flatnonzero(np.diff(key[order], append=-1))
        shared, entry, posting = np.diff(last, prepend=-1), entry[order[last]], posting[order[last]]
        text, other = text[entry], self._positions[posting]
        length, other_length = sets.lengths[text], lengths[other]
        # Elements before the last shared one are all found; those after it fit in both rests.
        rest = np.minimum(length - 1 - index[entry], other_length - 1 - self._index[posting])
        keep = fmeasures(shared + rest, length, other_length) > self.threshold
        return text[keep], other[keep]
