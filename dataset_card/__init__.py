"""The dataset card of a generated dataset: Hub metadata, the paper's statistics and figures,
provenance. `render_card` writes it; `stats_main` prints the same statistics for any dataset."""

from self_instruct.dataset_card.render import render_card
from self_instruct.dataset_card.stats import Table1Stats, compute_stats, stats_main

__all__ = ["Table1Stats", "compute_stats", "render_card", "stats_main"]
