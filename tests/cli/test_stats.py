"""Table 1 statistics (`self_instruct.dataset_card.stats`) against independent computations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from anchors import PAPER_SEEDS as ANCHOR_SEEDS
from anchors import needs
from datasets import Dataset
from huggingface_hub import HfApi
from local_hub import LocalHub

from self_instruct.dataset_card.stats import (
    TABLE1_LABELS,
    compute_stats,
    format_stats_table,
    stats_main,
)
from self_instruct.prompting.seeds import BUNDLED_SEEDS_PATH, SeedFileError


def independent_table1(records: list[dict]) -> dict[str, str]:
    """Table 1 of seed-schema records, counted without the package, rounded as printed."""

    def words(text: str) -> int:
        return len(re.findall(r"\S+", text))

    pairs = [pair for record in records for pair in record["instances"]]
    inputs = [p["input"] for p in pairs if p["input"].strip()]
    n_cls = sum(1 for record in records if record["is_classification"] is True)
    return {
        TABLE1_LABELS["instructions"]: str(len(records)),
        TABLE1_LABELS["classification"]: str(n_cls),
        TABLE1_LABELS["non_classification"]: str(len(records) - n_cls),
        TABLE1_LABELS["instances"]: str(len(pairs)),
        TABLE1_LABELS["empty_input_instances"]: str(len(pairs) - len(inputs)),
        TABLE1_LABELS["mean_instruction_words"]: "%.1f"
        % (sum(words(r["instruction"]) for r in records) / len(records)),
        TABLE1_LABELS["mean_input_words"]: "%.1f" % (sum(map(words, inputs)) / len(inputs)),
        TABLE1_LABELS["mean_output_words"]: "%.1f"
        % (sum(words(p["output"]) for p in pairs) / len(pairs)),
    }


def printed_table(text: str) -> dict[str, str]:
    """label -> value of the one-column Markdown table that stats_main prints."""
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return {label.strip(): value.strip() for label, value in rows[1:]}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@needs(ANCHOR_SEEDS)
def test_paper_seed_tasks_match_an_independent_count():
    printed = printed_table(stats_main(str(ANCHOR_SEEDS)))
    assert printed == independent_table1(read_jsonl(ANCHOR_SEEDS))
    # The paper's 175 seed tasks, as its repository ships them.
    assert printed[TABLE1_LABELS["instructions"]] == "175"
    assert printed[TABLE1_LABELS["empty_input_instances"]] == "50"


def test_bundled_seeds_match_an_independent_count():
    printed = printed_table(stats_main("bundled"))
    assert printed == independent_table1(read_jsonl(BUNDLED_SEEDS_PATH))


def test_seed_jsonl_with_several_instances_per_task(tmp_path):
    records = [
        {
            "id": "a",
            "name": "a",
            "instruction": "Sort the  numbers\tin ascending order.",
            "instances": [{"input": "3 1 2", "output": "1 2 3"}, {"input": " ", "output": "none"}],
            "is_classification": False,
        },
        {
            "id": "b",
            "name": "b",
            "instruction": "Is the sentence positive?",
            "instances": [{"input": "I like it.", "output": "Yes"}],
            "is_classification": True,
        },
    ]
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    printed = printed_table(stats_main(str(path)))
    assert printed == independent_table1(records)
    assert printed[TABLE1_LABELS["mean_input_words"]] == "3.0"  # (3 + 3) / 2; " " is empty


def write_output_folder(folder: Path) -> None:
    """Two configurations in our output schema, declared in the card's YAML as ours are."""
    folder.mkdir(parents=True, exist_ok=True)
    instructions = Dataset.from_dict(
        {"instruction": ["Name a color.", "Is it a fruit?"], "is_classification": [False, True]}
    )
    instances = Dataset.from_dict({"input": ["", "apple", "stone"], "output": ["red", "Yes", "No"]})
    instructions.to_parquet(folder / "instructions.parquet")
    instances.to_parquet(folder / "instances.parquet")
    (folder / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: instructions\n  data_files: instructions.parquet\n"
        "- config_name: instances\n  data_files: instances.parquet\n---\n",
        encoding="utf-8",
    )


OUTPUT_FOLDER_TABLE = {
    TABLE1_LABELS["instructions"]: "2",
    TABLE1_LABELS["classification"]: "1",
    TABLE1_LABELS["non_classification"]: "1",
    TABLE1_LABELS["instances"]: "3",
    TABLE1_LABELS["empty_input_instances"]: "1",
    TABLE1_LABELS["mean_instruction_words"]: "3.5",  # (3 + 4) / 2
    TABLE1_LABELS["mean_input_words"]: "1.0",
    TABLE1_LABELS["mean_output_words"]: "1.0",
}


def test_output_schema_folder(tmp_path):
    write_output_folder(tmp_path / "run")
    assert printed_table(stats_main(str(tmp_path / "run"))) == OUTPUT_FOLDER_TABLE


def test_hub_ids_in_either_schema(tmp_path):
    write_output_folder(tmp_path / "run")
    with LocalHub(tmp_path / "hub", users={"alice": "token-a"}):
        api = HfApi(token="token-a")
        for repo in ("alice/run", "alice/seeds"):
            api.create_repo(repo, repo_type="dataset")
        api.upload_folder(folder_path=tmp_path / "run", repo_id="alice/run", repo_type="dataset")
        api.upload_file(
            path_or_fileobj=BUNDLED_SEEDS_PATH,
            path_in_repo="train.jsonl",
            repo_id="alice/seeds",
            repo_type="dataset",
        )
        run, seeds = stats_main("alice/run"), stats_main("alice/seeds")
    assert printed_table(run) == OUTPUT_FOLDER_TABLE
    assert printed_table(seeds) == independent_table1(read_jsonl(BUNDLED_SEEDS_PATH))


def test_empty_data_prints_na_not_a_crash():
    empty = compute_stats(
        Dataset.from_dict({"instruction": [], "is_classification": []}),
        Dataset.from_dict({"input": [], "output": []}),
    )
    table = format_stats_table({"run": empty})
    assert f"| {TABLE1_LABELS['instances']} | 0 |" in table
    assert f"| {TABLE1_LABELS['mean_output_words']} | n/a |" in table


def test_data_in_neither_schema_fails_with_the_seed_loader_message(tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text('{"text": "hello"}\n', encoding="utf-8")
    with pytest.raises(SeedFileError, match="missing field"):
        stats_main(str(path))
