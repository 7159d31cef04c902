"""Write a generated dataset's README.md: Hub metadata, statistics, plots and provenance.

The YAML header is built with the same `datasets` classes that `push_to_hub` uses
(`MetadataConfigs`, `DatasetInfosDict`), so `load_dataset(folder, name)` reads each configuration
from it. Its `self_instruct.files` records the size and sha256 of every data file and figure, the
exact list a push uploads once it has checked them. `datasets` keys a local folder's cache on
that YAML alone; the data file names (the pipeline puts a content hash in them) and the
per-configuration row counts and byte sizes in `dataset_info` make it change whenever the data
does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import jinja2
from datasets import Dataset, DatasetInfo, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from self_instruct.about import CITATION
from self_instruct.dataset_card.analysis import VerbNounResult, rouge_to_seeds, verb_noun_pairs
from self_instruct.dataset_card.plots import (
    Plot,
    plot_funnel,
    plot_lengths,
    plot_rouge_to_seeds,
    plot_verb_noun,
)
from self_instruct.dataset_card.stats import (
    compute_stats,
    format_stats_table,
    seed_stats_input,
    word_counts,
)
from self_instruct.export.files import content_named, file_entries
from self_instruct.layout import CARD, CONFIG_DESCRIPTIONS, DEFAULT_CONFIG, PLOTS_DIR, SPLIT
from self_instruct.prompting.seeds import SeedTask

TEMPLATE = "card.md.j2"
TAGS = ["self-instruct", "synthetic", "instruction-tuning"]
PLACEHOLDER_REPO = "path/to/this/dataset"
LOAD_START, LOAD_END = "<!-- load-example:start -->", "<!-- load-example:end -->"
SAMPLE_ROWS = 3
SAMPLE_CHARS = 120  # per cell: a sample shows the shape of the data, not whole outputs
SAMPLE_COLUMNS = {
    "instructions": ("instruction", "is_classification", "num_instances", "max_rouge_l"),
    "instances": ("instruction", "input", "output"),
    "sft": ("prompt", "completion"),
}
# The Hub's buckets, one per power of ten from 1K (datasets' resources/size_categories.json).
_SIZE_CATEGORIES = ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M"]


def size_category(num_rows: int) -> str:
    """The Hub's `size_categories` bucket for the largest configuration."""
    return _SIZE_CATEGORIES[min(max(len(str(num_rows)) - 3, 0), len(_SIZE_CATEGORIES) - 1)]


def _dataset_info(name: str, rows: Dataset, folder: Path, files: Sequence[str]) -> DatasetInfo:
    splits = SplitDict()
    splits.add(SplitInfo(name=SPLIT, num_bytes=rows.data.nbytes, num_examples=len(rows)))
    return DatasetInfo(
        config_name=name,
        features=rows.features,
        splits=splits,
        download_size=sum((folder / file).stat().st_size for file in files),
        dataset_size=rows.data.nbytes,
    )


def card_metadata(
    folder: Path,
    data_files: dict[str, list[str]],
    rows: dict[str, Dataset],
    pretty_name: str,
    license: str,
) -> DatasetCardData:
    """The YAML header: Hub fields, one `configs` entry per configuration, sizes."""
    data = DatasetCardData(
        pretty_name=pretty_name,
        license=license,
        language=["en"],
        annotations_creators=["machine-generated"],
        language_creators=["machine-generated"],
        multilinguality=["monolingual"],
        source_datasets=["original"],
        task_categories=["text-generation"],
        size_categories=[size_category(max(len(r) for r in rows.values()))],
        tags=TAGS,
    )
    infos = {
        name: _dataset_info(name, rows[name], folder, files) for name, files in data_files.items()
    }
    DatasetInfosDict(infos).to_dataset_card_data(data)
    configs = {
        name: {"data_files": [{"split": SPLIT, "path": files}]}
        for name, files in data_files.items()
    }
    configs[DEFAULT_CONFIG]["default"] = True
    MetadataConfigs(configs).to_dataset_card_data(data)
    return data


def _with_origin(data: DatasetCardData, provenance: dict, files: dict) -> DatasetCardData:
    """`self_instruct: {model, seeds, files}` in the YAML: read back by pushes for commit titles,
    the version history, and the files (with sizes and hashes) that make up the version."""
    seeds = provenance["seeds"]
    data["self_instruct"] = {
        "model": provenance["model"],
        "seeds": f"{seeds['source']} (sha256 {seeds['sha256'][:12]})",
        "files": files,
    }
    return data


def write_plots(
    folder: Path,
    rows: dict[str, Dataset],
    seeds: Sequence[SeedTask],
    funnel: dict,
    threshold: float,
    structure: VerbNounResult,
) -> dict[str, Plot]:
    """Every figure of the card, under `folder/plots/` (cleared first: no stale figure survives),
    named by content like the data files."""
    (folder / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    for stale in (folder / PLOTS_DIR).glob("*.png"):
        stale.unlink()
    instructions = list(rows["instructions"]["instruction"])
    instances = rows["instances"]
    scores = rouge_to_seeds(instructions, [task.instruction for task in seeds])
    lengths = {
        "instructions": word_counts(instructions),
        "non-empty inputs": [n for n in word_counts(instances["input"]) if n],
        "outputs": word_counts(instances["output"]),
    }
    plots = {
        "funnel": plot_funnel(funnel, folder, f"{PLOTS_DIR}/funnel.png"),
        "rouge": plot_rouge_to_seeds(scores, threshold, folder, f"{PLOTS_DIR}/rouge_to_seeds.png"),
        "lengths": plot_lengths(lengths, folder, f"{PLOTS_DIR}/lengths.png"),
    }
    if structure.pairs:
        plots["verb_noun"] = plot_verb_noun(structure.pairs, folder, f"{PLOTS_DIR}/verb_noun.png")
    return {key: _content_named(folder, plot) for key, plot in plots.items()}


def _content_named(folder: Path, plot: Plot) -> Plot:
    path = content_named(folder / plot.path)
    return replace(plot, path=path.relative_to(folder).as_posix())


def load_example(repo_id: str | None = None, revision: str | None = None) -> str:
    """The card's loading snippet, between markers so that a push can name its repo and tag."""
    revision_arg = f', revision="{revision}"' if revision else ""
    return (
        f"{LOAD_START}\n```python\nfrom datasets import load_dataset\n\n"
        f'instances = load_dataset("{repo_id or PLACEHOLDER_REPO}", "{DEFAULT_CONFIG}", '
        f'split="{SPLIT}"{revision_arg})\n```\n{LOAD_END}'
    )


def with_load_example(card_text: str, repo_id: str, revision: str | None) -> str:
    """`card_text` whose loading snippet names `repo_id` at `revision` (a pushed version)."""
    if LOAD_START not in card_text or LOAD_END not in card_text:
        return card_text  # a card written before the markers existed, or by hand
    head, rest = card_text.split(LOAD_START, 1)
    return head + load_example(repo_id, revision) + rest.split(LOAD_END, 1)[1]


def _sample_value(value: object) -> str:
    """Chat messages by their text; anything longer than a table cell should be, cut."""
    if isinstance(value, list) and value and isinstance(value[0], dict) and "content" in value[0]:
        value = " / ".join(message["content"] for message in value)
    if isinstance(value, float):
        value = f"{value:.2f}"
    text = str(value)
    return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 1] + "…"


def samples(rows: dict[str, Dataset]) -> dict[str, dict]:
    """The first few rows of each configuration, in the columns that show what it holds."""
    shown = {}
    for name, data in rows.items():
        columns = [c for c in SAMPLE_COLUMNS.get(name, data.column_names) if c in data.column_names]
        head = data.select_columns(columns).select(range(min(SAMPLE_ROWS, len(data))))
        shown[name] = {
            "columns": columns,
            "rows": [[_sample_value(row[c]) for c in columns] for row in head],
        }
    return shown


def _md_cell(value: object) -> str:
    """Table cells cannot hold pipes or line breaks."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = _md_cell
    return env


def render_card(
    folder: Path,
    *,
    data_files: dict[str, list[str]],
    rows: dict[str, Dataset],
    seeds: Sequence[SeedTask],
    funnel: dict,
    provenance: dict,
    pretty_name: str | None = None,
    license: str = "apache-2.0",
    repo_id: str | None = None,
) -> Path:
    """Write `folder/README.md` and its plots under `folder/plots/`; return the card's path.

    Args:
        data_files: each configuration's Parquet files, relative to `folder`.
        rows: the same data, loaded, one `Dataset` per configuration (schemas in `export/rows.py`).
        seeds: the seed tasks of the run, for the seed statistics and the ROUGE-L figure.
        funnel: per stage ("instructions", "instances"): `{"generated": n, "rejected":
            {reason: n, ...}, "kept": n}`, in the order the bars and tables show them.
        provenance: the run's facts that the Provenance section lists (keys: see `card.md.j2`).
        repo_id: the Hub id the card's loading example names; a placeholder without it (a push
            names its repo and tag there, see `with_load_example`).
    """
    folder = Path(folder)
    pretty_name = pretty_name or f"Self-Instruct data generated by {provenance['model']}"
    stats = {
        "generated": compute_stats(rows["instructions"], rows["instances"]),
        "seed tasks": compute_stats(*seed_stats_input(seeds)),
    }
    structure = verb_noun_pairs(list(rows["instructions"]["instruction"]))
    plots = write_plots(folder, rows, seeds, funnel, provenance["rouge_threshold"], structure)
    configs = [
        (name, len(rows[name]), files, CONFIG_DESCRIPTIONS[name])
        for name, files in data_files.items()
    ]
    listed = [
        *(f for files in data_files.values() for f in files),
        *(p.path for p in plots.values()),
    ]
    content = (
        _environment()
        .get_template(TEMPLATE)
        .render(
            card_data=_with_origin(
                card_metadata(folder, data_files, rows, pretty_name, license),
                provenance,
                file_entries(folder, listed),
            ).to_yaml(),
            pretty_name=pretty_name,
            load_example=load_example(repo_id),
            samples=samples(rows),
            configs=configs,
            default_config=DEFAULT_CONFIG,
            stats=stats,
            stats_table=format_stats_table(stats),
            funnel=funnel,
            plots=plots,
            structure=structure,
            provenance=provenance,
            citation=CITATION.strip(),
        )
    )
    path = folder / CARD
    DatasetCard(content).save(path)
    return path
