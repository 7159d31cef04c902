"""The card's figures as PNG files, each with the alt text the card shows for it.

`matplotlib.figure.Figure` is used directly instead of pyplot: it draws with the Agg canvas,
touches no global backend state and leaks no open figures when the pipeline renders many cards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from matplotlib import colormaps
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 110
KEPT, REJECTED, GENERATED = "#4c9f70", "#d1603d", "#7f8c9a"


@dataclass(frozen=True)
class Plot:
    """A written figure: its path relative to the card and its Markdown alt text."""

    path: str
    alt: str

    @property
    def markdown(self) -> str:
        return f"![{self.alt}]({self.path})"


def _save(fig: Figure, folder: Path, relative: str, alt: str) -> Plot:
    fig.savefig(folder / relative, dpi=DPI, bbox_inches="tight")
    return Plot(relative, alt)


def _funnel_bars(stage: dict) -> list[tuple[str, int, str]]:
    bars = [("generated", stage["generated"], GENERATED)]
    bars += [(f"rejected: {reason}", n, REJECTED) for reason, n in stage["rejected"].items()]
    return [*bars, ("kept", stage["kept"], KEPT)]


def plot_funnel(funnel: dict, folder: Path, relative: str) -> Plot:
    """Horizontal bars per stage: generated, each rejection reason, kept (top to bottom)."""
    fig = Figure(
        layout="constrained",
        figsize=(10, 0.9 + 0.35 * max(len(s["rejected"]) + 2 for s in funnel.values())),
    )
    for ax, (stage, counts) in zip(fig.subplots(1, len(funnel)), funnel.items(), strict=True):
        labels, values, colors = zip(*_funnel_bars(counts), strict=True)
        bars = ax.barh(labels, values, color=colors)
        ax.bar_label(bars, padding=3)
        ax.invert_yaxis()
        ax.set_title(stage)
        ax.set_xlabel("count")
        ax.margins(x=0.15)
    fig.suptitle("Filtering funnel")
    alt = "; ".join(
        f"{stage}: {c['generated']} generated, {sum(c['rejected'].values())} rejected, "
        f"{c['kept']} kept"
        for stage, c in funnel.items()
    )
    return _save(fig, folder, relative, f"Bar chart of the filtering funnel. {alt}.")


def plot_rouge_to_seeds(
    scores: Sequence[float], threshold: float, folder: Path, relative: str
) -> Plot:
    """The paper's Figure 3: each instruction's ROUGE-L with its most similar seed instruction."""
    fig = Figure(layout="constrained", figsize=(7, 3.6))
    ax = fig.subplots()
    ax.hist(scores, bins=[i / 20 for i in range(21)], color=GENERATED, edgecolor="white")
    ax.axvline(threshold, color=REJECTED, linestyle="--", label=f"filter threshold {threshold}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("ROUGE-L F1 with the most similar seed instruction")
    ax.set_ylabel("# instructions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    summary = f"median {median(scores):.2f}, maximum {max(scores):.2f}" if scores else "no data"
    alt = (
        f"Histogram of the ROUGE-L overlap of {len(scores)} generated instructions with their "
        f"most similar seed instruction: {summary}."
    )
    return _save(fig, folder, relative, alt)


def _integer_bins(top: int, most: int = 40) -> range:
    """Bins of equal integer width from 0 to `top`: no bin holds more word counts than another."""
    width = -(-(top + 1) // most)
    return range(0, top + width + 1, width)


def _length_panel(ax, name: str, values: Sequence[int]) -> None:
    """One histogram; the longest 1% are drawn in the last bin so that a few very long texts
    do not squash the rest of the distribution into one bar."""
    ordered = sorted(values)
    cut = ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0
    ax.hist([min(v, cut) for v in values], bins=_integer_bins(cut), color=GENERATED)
    ax.set_title(name)
    clipped = f"; {cut}+ in the last bar" if ordered and ordered[-1] > cut else ""
    ax.set_xlabel(f"length (words{clipped})")
    ax.set_ylabel("count")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def plot_lengths(lengths: dict[str, Sequence[int]], folder: Path, relative: str) -> Plot:
    """The paper's Figure 4: word-length histograms, one panel per text field."""
    fig = Figure(layout="constrained", figsize=(4 * len(lengths), 3.4))
    for ax, (name, values) in zip(fig.subplots(1, len(lengths)), lengths.items(), strict=True):
        _length_panel(ax, name, values)
    summary = ", ".join(
        f"{name} median {median(values):g} words (longest {max(values)})"
        if values
        else f"{name}: none"
        for name, values in lengths.items()
    )
    return _save(fig, folder, relative, f"Histograms of text lengths in words: {summary}.")


def plot_verb_noun(
    pairs: Sequence[tuple[str, str]], folder: Path, relative: str, verbs: int = 20, nouns: int = 4
) -> Plot:
    """The paper's Figure 2: top root verbs (inner ring) and their top direct objects (outer)."""
    by_verb = Counter(verb for verb, _ in pairs).most_common(verbs)
    objects = Counter(pairs).most_common()
    palette = colormaps["tab20"].colors
    outer, outer_colors = [], []
    for i, (verb, count) in enumerate(by_verb):
        top = [(noun, n) for (v, noun), n in objects if v == verb][:nouns]
        rest = count - sum(n for _, n in top)
        outer += [*top, ("", rest)]
        outer_colors += [to_rgba(palette[i % 20], 0.55)] * len(top) + ["white"]
    fig = Figure(layout="constrained", figsize=(8, 8))
    ax = fig.subplots()
    wedges = {"width": 0.3, "edgecolor": "white"}
    text = {"fontsize": 8}
    ax.pie(
        [n for _, n in outer], labels=[w for w, _ in outer], colors=outer_colors, radius=1.0,
        labeldistance=0.86, rotatelabels=True, wedgeprops=wedges, textprops=text,
    )  # fmt: skip
    ax.pie(
        [n for _, n in by_verb], labels=[v for v, _ in by_verb], colors=palette[: len(by_verb)],
        radius=0.7, labeldistance=0.72, rotatelabels=True, wedgeprops=wedges, textprops=text,
    )  # fmt: skip
    ax.set_title(f"Top {len(by_verb)} root verbs and their top {nouns} direct objects")
    names = ", ".join(f"{verb} ({n})" for verb, n in by_verb[:10])
    alt = (
        f"Nested pie chart of {len(pairs)} instructions with a verb-object structure; "
        f"most common root verbs: {names}."
    )
    return _save(fig, folder, relative, alt)


RATING_COLORS = {"A": "#2e7d4f", "B": "#8cc084", "C": "#f0a35e", "D": "#d1603d"}


def plot_ratings(shares: dict[str, dict[str, float]], folder: Path, relative: str) -> Plot:
    """The paper's Figure 6: per model, the stacked shares of answers rated A, B, C and D."""
    fig = Figure(layout="constrained", figsize=(1.6 + 1.3 * len(shares), 4.2))
    ax = fig.subplots()
    bottom = [0.0] * len(shares)
    for rating, color in RATING_COLORS.items():
        values = [100 * share.get(rating, 0.0) for share in shares.values()]
        bars = ax.bar(list(shares), values, bottom=bottom, color=color, label=rating, width=0.6)
        ax.bar_label(bars, [f"{v:.0f}%" if v >= 4 else "" for v in values], label_type="center")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of rated answers")
    ax.set_title("Answers rated by the judge (A best, D worst)")
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1), title="rating")
    alt = "; ".join(
        f"{model}: " + ", ".join(f"{r} {100 * s.get(r, 0.0):.0f}%" for r in RATING_COLORS)
        for model, s in shares.items()
    )
    return _save(fig, folder, relative, f"Stacked bars of the judge's ratings. {alt}.")
