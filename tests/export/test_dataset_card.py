"""The dataset card: Hub YAML, loading through it, every number in it, its plots."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import datasets.utils.metadata
import matplotlib.image
import pytest
from datasets import Dataset, load_dataset
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard
from optional_extras import require_extra
from rouge_score import rouge_scorer

from self_instruct.dataset_card.analysis import verb_noun_pairs
from self_instruct.dataset_card.plots import plot_verb_noun
from self_instruct.dataset_card.render import render_card, size_category
from self_instruct.export.rows import FEATURES
from self_instruct.layout import CONFIG_NAMES
from self_instruct.prompting.filters import INSTANCE_REASONS, INSTRUCTION_REASONS
from self_instruct.prompting.seeds import load_seeds

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO_ID = "alice/self-instruct-run"
# The Hub's allowed metadata values, as the datasets library ships them.
HUB_VALUES = Path(datasets.utils.metadata.__file__).parent / "resources"


def hub_values(name: str):
    return json.loads((HUB_VALUES / f"{name}.json").read_text(encoding="utf-8"))


# (instruction, is_classification, [(input, output), ...]) as a small model writes them.
TASKS = [
    ("Give three tips for staying focused while studying at home.", False,
     [("", "1. Put your phone away.\n2. Study in 25-minute blocks.\n3. Keep water nearby.")]),
    ("Classify the sentiment of the tweet as positive, negative or neutral.", True,
     [("Just missed my train again, great start to Monday.", "negative"),
      ("The new library opens at 9 today.", "neutral")]),
    ("Rewrite the sentence in the passive voice.", False,
     [("The committee approved the budget.", "The budget was approved by the committee.")]),
    ("Is the following number prime? Answer yes or no.", True,
     [("91", "no"), ("97", "yes"), ("2", "yes")]),
    ("Explain what the Python code does | in one sentence.", False,
     [("print(sum(range(10)))", "It prints the sum of the integers from 0 to 9, which is 45.")]),
    ("Suggest a title for a blog post about saving money on groceries.", False,
     [("", "Eat Well, Spend Less: A Week of Smart Grocery Shopping")]),
    ("Write a haiku about autumn rain.", False, []),
]  # fmt: skip

# A funnel as the pipeline counts it: reasons named as in prompting/filters.py, in that order.
FUNNEL = {
    "instructions": {
        "generated": 31,
        "rejected": {"truncated": 2, "too_short": 4, "blacklisted_word": 3, "too_similar": 15},
        "kept": 7,
    },
    "instances": {"generated": 13, "rejected": {"empty_output": 2, "duplicate": 1}, "kept": 10},
}


def provenance(num_seeds: int) -> dict:
    return {
        "package_version": "0.1.0",
        "git_commit": "0123456789abcdef",
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "backend": "transformers",
        "generation": {"temperature": 0.7, "top_p": 0.5, "max_new_tokens": 1024},
        "seeds": {"source": "bundled|ours", "sha256": "ab" * 32, "count": num_seeds},
        "prompt_templates_sha256": "cd" * 32,
        "rouge_threshold": 0.7,
        "provenance_pool": 2000,
        "filters": [*INSTRUCTION_REASONS, *INSTANCE_REASONS],
        "random_seed": 42,
        "command": "self-instruct generate --num-instructions 7 --output out",
        "usage": {"requests": 44, "completion_tokens": 9120},
        "created_at": "2025-06-01T12:00:00+00:00",
    }


def build_rows(tasks) -> dict[str, Dataset]:
    instructions, instances, sft = [], [], []
    for i, (text, is_cls, pairs) in enumerate(tasks):
        instructions.append(
            {
                "id": f"instr-{i}",
                "instruction": text,
                "is_classification": is_cls,
                "max_rouge_l": 0.4,
                "mean_rouge_l": 0.1,
                "most_similar": [{"instruction": "A seed instruction.", "rouge_l": 0.4}],
                "num_instances": len(pairs),
                "round": i,
                "prompt_instructions": ["A seed instruction."],
            }
        )
        for j, (inp, out) in enumerate(pairs):
            row_id = f"instr-{i}-{j}"
            instances.append(
                {
                    "id": row_id,
                    "instruction_id": f"instr-{i}",
                    "instruction": text,
                    "is_classification": is_cls,
                    "input": inp,
                    "output": out,
                }
            )
            prompt = f"{text}\n\n{inp}".strip()
            sft.append(
                {
                    "id": f"sft-{row_id}",
                    "instance_id": row_id,
                    "template": j % 3,
                    "prompt": [{"role": "user", "content": prompt}],
                    "completion": [{"role": "assistant", "content": out}],
                }
            )
    columns = dict(zip(CONFIG_NAMES, (instructions, instances, sft), strict=True))
    return {
        name: Dataset.from_dict(
            {column: [row[column] for row in columns[name]] for column in FEATURES[name]},
            features=FEATURES[name],
        )
        for name in CONFIG_NAMES
    }


def write_parquet(folder: Path, rows: dict[str, Dataset]) -> dict[str, list[str]]:
    """Parquet files named by a hash of their content, as the pipeline names them."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    data_files = {}
    for name, dataset in rows.items():
        scratch = folder / "data" / f"{name}.tmp"
        dataset.to_parquet(scratch)
        digest = hashlib.sha256(scratch.read_bytes()).hexdigest()[:12]
        relative = f"data/{name}-{digest}.parquet"
        scratch.rename(folder / relative)
        data_files[name] = [relative]
    return data_files


def write_dataset(folder: Path, tasks, seeds, **facts) -> tuple[Path, dict[str, Dataset]]:
    """The card of `tasks`' rows; `facts` override the run's provenance."""
    rows = build_rows(tasks)
    card = render_card(
        folder,
        data_files=write_parquet(folder, rows),
        rows=rows,
        seeds=seeds,
        funnel=FUNNEL,
        provenance={**provenance(len(seeds)), **facts},
        repo_id=REPO_ID,
    )
    return card, rows


@pytest.fixture(scope="module")
def seeds():
    return load_seeds()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, seeds):
    folder = tmp_path_factory.mktemp("dataset")
    card, rows = write_dataset(folder, TASKS, seeds)
    return folder, card.read_text(encoding="utf-8"), rows


def markdown_table(text: str, first_header: str) -> dict[str, list[str]]:
    """first cell -> other cells, for the table whose header row starts with `first_header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    table = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        table[cells[0]] = cells[1:]
    return table


def test_yaml_parses_and_holds_the_hub_fields(rendered, seeds):
    folder, _, rows = rendered
    data = DatasetCard.load(folder / "README.md").data
    assert data.license == "apache-2.0"
    assert data.language == ["en"]
    assert data.task_categories == ["text-generation"]
    assert data.size_categories == ["n<1K"]
    assert set(data.language) <= set(hub_values("languages"))
    assert set(data.size_categories) <= set(hub_values("size_categories"))
    assert set(data.multilinguality) <= set(hub_values("multilingualities"))
    assert set(data.annotations_creators) <= set(hub_values("creators")["annotations"])
    assert set(data.language_creators) <= set(hub_values("creators")["language"])
    assert set(data.task_categories) <= set(datasets.utils.metadata.known_task_ids)
    assert "self-instruct" in data.tags
    configs = MetadataConfigs.from_dataset_card_data(data)
    assert set(configs) == set(CONFIG_NAMES)
    assert configs.get_default_config_name() == "instances"
    infos = DatasetInfosDict.from_dataset_card_data(data)
    for name in CONFIG_NAMES:
        assert infos[name].splits["train"].num_examples == len(rows[name])
        assert infos[name].features == FEATURES[name]


def test_load_dataset_reads_every_configuration_through_the_card(rendered, tmp_path):
    folder, _, rows = rendered
    for name in CONFIG_NAMES:
        loaded = load_dataset(str(folder), name, split="train", cache_dir=str(tmp_path))
        assert loaded.to_list() == rows[name].to_list()
    default = load_dataset(str(folder), split="train", cache_dir=str(tmp_path))
    assert default.to_list() == rows["instances"].to_list()


def test_rewritten_data_is_never_served_stale(tmp_path, seeds):
    folder, cache = tmp_path / "out", str(tmp_path / "cache")
    _, first = write_dataset(folder, TASKS, seeds)
    loaded = load_dataset(str(folder), "instances", split="train", cache_dir=cache)
    assert loaded.to_list() == first["instances"].to_list()
    for old in (folder / "data").iterdir():
        old.unlink()
    _, rows = write_dataset(folder, TASKS[:2], seeds)
    reloaded = load_dataset(str(folder), "instances", split="train", cache_dir=cache)
    assert len(reloaded) < len(first["instances"])
    assert reloaded.to_list() == rows["instances"].to_list()


def words(text: str) -> int:
    return len(re.findall(r"\S+", text))


def test_table1_numbers_match_the_data(rendered, seeds):
    _, text, _ = rendered
    pairs = [pair for _, _, task_pairs in TASKS for pair in task_pairs]
    inputs = [inp for inp, _ in pairs if inp]
    n_cls = sum(is_cls for _, is_cls, _ in TASKS)
    expected_generated = [
        str(len(TASKS)),
        str(n_cls),
        str(len(TASKS) - n_cls),
        str(len(pairs)),
        str(len(pairs) - len(inputs)),
        f"{sum(words(t) for t, _, _ in TASKS) / len(TASKS):.1f}",
        f"{sum(map(words, inputs)) / len(inputs):.1f}",
        f"{sum(words(out) for _, out in pairs) / len(pairs):.1f}",
    ]
    table = markdown_table(text, "statistic")
    assert [cells[0] for cells in table.values()] == expected_generated
    seed_pairs = [pair for task in seeds for pair in task.instances]
    assert table["# of instructions"][1] == str(len(seeds))
    assert table["# of instances"][1] == str(len(seed_pairs))


def test_funnel_tables_match_the_funnel(rendered):
    _, text, _ = rendered
    for stage, reasons in [("instructions", INSTRUCTION_REASONS), ("instances", INSTANCE_REASONS)]:
        named = list(FUNNEL[stage]["rejected"])
        assert named == [reason for reason in reasons if reason in named]  # the fixture is real
    for stage, counts in FUNNEL.items():
        table = markdown_table(text, stage)
        assert table["generated"] == [str(counts["generated"]), "100.0%"]
        assert table["kept"] == [
            str(counts["kept"]),
            f"{100 * counts['kept'] / counts['generated']:.1f}%",
        ]
        for reason, n in counts["rejected"].items():
            assert table[f"rejected: {reason}"] == [str(n), f"{100 * n / counts['generated']:.1f}%"]
        assert len(table) == len(counts["rejected"]) + 2


def test_configuration_table_and_provenance(rendered, seeds):
    _, text, rows = rendered
    table = markdown_table(text, "configuration")
    assert table["`instances` (default)"][0] == str(len(rows["instances"]))
    assert table["`instructions`"][0] == str(len(rows["instructions"]))
    assert table["`sft`"][0] == str(len(rows["sft"]))
    facts = provenance(len(seeds))
    block = markdown_table(text, "parameter")
    assert block == {k: [str(v)] for k, v in facts["generation"].items()}
    for value in ("0123456789abcdef", "HuggingFaceTB/SmolLM2-135M-Instruct", "ab" * 32, "cd" * 32):
        assert value in text
    assert f"bundled\\|ours ({len(seeds)} tasks" in text  # a pipe cannot break the table
    assert f"```bash\n{facts['command']}\n```" in text
    assert f'load_dataset("{REPO_ID}", "instances", split="train")' in text


@pytest.mark.parametrize("cap", [2000, 0])
def test_the_card_says_what_the_provenance_columns_are_measured_against(tmp_path, seeds, cap):
    card, _ = write_dataset(tmp_path, TASKS, seeds, provenance_pool=cap)
    text = " ".join(card.read_text(encoding="utf-8").split())
    columns = "`max_rouge_l`, `mean_rouge_l` and `most_similar` (its 10 most similar pool"
    assert columns in text
    sampled = "beyond that against a systematic sample of at most 2000 of them"
    assert (sampled in text) == bool(cap)
    assert ("are ROUGE-L F1 against the whole pool, as the paper's code" in text) == (not cap)


def test_plots_are_valid_pngs_with_alt_text(rendered):
    folder, text, _ = rendered
    images = re.findall(r"!\[([^\]]+)\]\(([^)]+)\)", text)
    named = {re.sub(r"-[0-9a-f]{12}\.png$", ".png", path) for _, path in images}  # content hash
    assert {"plots/funnel.png", "plots/rouge_to_seeds.png", "plots/lengths.png"} <= named
    assert DatasetCard(text).data["self_instruct"]["files"].keys() >= {p for _, p in images}
    for alt, path in images:
        assert len(alt) > 40
        assert (folder / path).read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(folder / path).shape
        assert height > 200 and width > 200


def test_verb_noun_section_is_there_when_it_ran(rendered):
    folder, text, _ = rendered
    result = verb_noun_pairs([t for t, _, _ in TASKS])
    if result.skipped:  # never published as skipped (tests/export/test_public_card.py)
        assert "## Verb-noun structure" not in text
        assert not list((folder / "plots").glob("verb_noun*.png"))
    else:
        section = text.split("## Verb-noun structure")[1].split("\n## ")[0]
        assert f"Parsed with {result.parser}: {len(result.pairs)} of {len(TASKS)}" in section
        assert re.search(r"\]\(plots/verb_noun-[0-9a-f]{12}\.png\)", section)


def test_verb_noun_without_a_pipeline_is_skipped_not_an_error():
    result = verb_noun_pairs(["Write a poem."], pipelines=("no_such_spacy_pipeline",))
    assert result.pairs == []
    assert "installed" in result.skipped  # spaCy, or the pipeline, is missing


def test_verb_noun_parse_with_spacy_when_installed():
    require_extra("analysis")
    result = verb_noun_pairs(
        ["Give three tips for staying focused.", "Is the number prime?", "Write a haiku."]
    )
    if result.skipped and "no English spaCy pipeline" in result.skipped:
        pytest.skip(result.skipped)
    assert result.pairs == [("give", "tip"), ("write", "haiku")]


def test_verb_noun_plot(tmp_path):
    pairs = [("write", "poem")] * 5 + [("write", "letter")] * 2 + [("give", "tip")] * 3
    plot = plot_verb_noun(pairs, tmp_path, "verb_noun.png")
    assert (tmp_path / "verb_noun.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "Nested pie chart of 10 instructions" in plot.alt
    assert "most common root verbs: write (7), give (3)." in plot.alt
    assert plot.markdown == f"![{plot.alt}](verb_noun.png)"


def test_rouge_plot_summarises_overlap_with_the_seeds(rendered, seeds):
    _, text, _ = rendered
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    best = sorted(
        max(scorer.score(seed.instruction, t)["rougeL"].fmeasure for seed in seeds)
        for t, _, _ in TASKS
    )
    alt = re.search(r"!\[([^\]]+)\]\(plots/rouge_to_seeds-\w+\.png\)", text).group(1)
    assert f"of {len(TASKS)} generated instructions" in alt
    assert f"median {best[len(best) // 2]:.2f}, maximum {best[-1]:.2f}" in alt


@pytest.mark.parametrize(
    ("rows", "bucket"),
    [(0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"), (52_445, "10K<n<100K"), (10**6, "1M<n<10M")],
)
def test_size_category(rows, bucket):
    assert size_category(rows) == bucket


def test_a_run_that_kept_nothing_still_gets_a_card(tmp_path, seeds):
    rows = build_rows([])
    nothing = {"generated": 0, "rejected": {}, "kept": 0}
    card = render_card(
        tmp_path,
        data_files=write_parquet(tmp_path, rows),
        rows=rows,
        seeds=seeds,
        funnel={"instructions": nothing, "instances": nothing},
        provenance=provenance(len(seeds)),
    )
    text = card.read_text(encoding="utf-8")
    assert markdown_table(text, "statistic")["ave. output length (in words)"][0] == "n/a"
    assert markdown_table(text, "instances")["kept"] == ["0", "0.0%"]
    assert 'load_dataset("path/to/this/dataset", "instances"' in text  # no repo_id given
    # (datasets 5.2 cannot load a Parquet split with no rows, so the YAML is checked instead.)
    infos = DatasetInfosDict.from_dataset_card_data(DatasetCard.load(card).data)
    assert infos["instances"].splits["train"].num_examples == 0
