"""Tokenizers for ROUGE-L, and the token-to-code-point vocabulary the fast LCS runs on.

`rouge_score` (the reference every published Self-Instruct filter used) lower-cases with Python's
`str.lower`, keeps runs of ASCII letters and digits and drops everything else, so a text in a
non-Latin script has no tokens and scores 0 against anything. `tokenize_rouge_score` reproduces
that exactly and is the default. `tokenize_unicode` is the opt-in for multilingual data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

Tokenizer = Callable[[str], list[str]]

# Bytes that are not ASCII letters or digits become spaces (upper case is gone by then).
_ROUGE_SCORE_BYTES = bytes(b if chr(b).isascii() and chr(b).isalnum() else 32 for b in range(256))
# Scripts written without spaces between words: every character is a token, as CJK ROUGE does.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_UNICODE_TOKEN = re.compile(rf"[{_UNSPACED}]|[^\W_{_UNSPACED}]+")


def tokenize_rouge_score(text: str) -> list[str]:
    """Exactly `rouge_score.tokenize.tokenize(text, None)`.

    rouge_score lower-cases, turns every run outside `[a-z0-9]` into a space and splits. Here
    non-ASCII characters become "?" (then a space) and one byte-table `translate` does the rest,
    faster than a regular expression: the tokenizer is a large part of the filter's time on
    instruction-length texts. Lower-casing first matters: some non-ASCII letters lower-case to
    ASCII ones (KELVIN SIGN -> "k").
    """
    return text.lower().encode("ascii", "replace").translate(_ROUGE_SCORE_BYTES).decode().split()


def tokenize_unicode(text: str) -> list[str]:
    """Words of letters and digits in any script; one token per character in CJK scripts.

    NFKC folds compatibility forms (full-width Latin, ligatures) and `casefold` is the caseless
    matching Unicode recommends, so the same word written two ways is one token.
    """
    return _UNICODE_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


TOKENIZERS: dict[str, Tokenizer] = {
    "rouge_score": tokenize_rouge_score,
    "unicode": tokenize_unicode,
}


def get_tokenizer(tokenizer: str | Tokenizer) -> Tokenizer:
    """Resolve a tokenizer name from `TOKENIZERS`, or pass a callable through (evaluate's way)."""
    if callable(tokenizer):
        return tokenizer
    try:
        return TOKENIZERS[tokenizer]
    except KeyError:
        raise ValueError(
            f"Unknown tokenizer {tokenizer!r}: use one of {sorted(TOKENIZERS)} or a callable."
        ) from None


class Vocabulary:
    """Maps each distinct token to one code point, so a token sequence becomes a `str`.

    rapidfuzz computes LCS bit-parallel in C++ on strings; on these strings LCS counts tokens.
    """

    MAX_SIZE = 0x110000  # the number of Unicode code points

    def __init__(self) -> None:
        self._codes: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._codes)

    def encode(self, tokens: Sequence[str]) -> str:
        """The code-point string of `tokens`, adding unseen tokens to the vocabulary."""
        codes = self._codes
        try:  # the common case once the vocabulary has grown: every token known
            return "".join(map(codes.__getitem__, tokens))
        except KeyError:
            pass
        for token in tokens:
            if token not in codes:
                if len(codes) == self.MAX_SIZE:
                    raise OverflowError("More distinct tokens than Unicode code points.")
                codes[token] = chr(len(codes))
        return "".join(map(codes.__getitem__, tokens))
