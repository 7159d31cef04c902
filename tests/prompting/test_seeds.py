"""Seed loading: our bundled set meets the brief, the paper's file loads as-is, bad input fails
with file, line and fix, and dataset folders load like JSON Lines files."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from anchors import PAPER_SEEDS, needs
from datasets import Dataset
from rouge_score import rouge_scorer

from self_instruct.prompting.seeds import (
    BUNDLED_SEEDS_PATH,
    SeedFileError,
    SeedInstance,
    SeedTask,
    load_seeds,
    seeds_fingerprint,
)

# The paper's instruction filter (bootstrap_instructions.py), checked here on our own seeds.
BLACKLIST = re.compile(
    r"\b(image|images|graph|graphs|picture|pictures|file|files|map|maps|draw|plot|go to)\b",
    re.IGNORECASE,
)


def task_line(**overrides) -> str:
    record = {
        "id": "t1",
        "name": "greeting",
        "instruction": "Say hello to the user.",
        "instances": [{"input": "", "output": "Hello!"}],
        "is_classification": False,
    }
    record.update(overrides)
    return json.dumps(record, ensure_ascii=False)


def write(tmp_path: Path, *lines: str, name: str = "seeds.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --- the bundled set ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> list[SeedTask]:
    return load_seeds()


def test_bundled_set_has_the_briefed_mix(bundled):
    classification = sum(task.is_classification for task in bundled) / len(bundled)
    with_input = sum(bool(task.instances[0].input) for task in bundled) / len(bundled)
    assert len(bundled) >= 110
    assert 0.10 <= classification <= 0.20
    assert 0.25 <= with_input <= 0.45
    assert all(len(task.instances) == 1 and task.instances[0].output.strip() for task in bundled)
    assert [task.id for task in bundled] == [f"seed_task_{i}" for i in range(len(bundled))]
    assert len({task.name for task in bundled}) == len(bundled)
    assert all(re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", task.name) for task in bundled)


def test_the_seeds_help_counts_the_bundled_tasks(bundled):
    """--seeds' help names the bundled set's size: it said "100+" of 139."""
    from dataclasses import fields

    from self_instruct.config import PipelineConfig

    (seeds,) = [f for f in fields(PipelineConfig) if f.name == "seeds"]
    assert f"our own {len(bundled)} default seed tasks" in seeds.metadata["help"]


def test_bundled_instructions_pass_the_papers_filters(bundled):
    for task in bundled:
        text = task.instruction
        assert 4 <= len(text.split()) <= 40, text
        assert not BLACKLIST.search(text), text
        assert not text.startswith("Write a program"), text
        assert text[0].isascii() and text[0].isalnum(), text


def test_bundled_path_is_inside_the_package():
    import self_instruct

    assert BUNDLED_SEEDS_PATH.is_file()
    assert BUNDLED_SEEDS_PATH.parent.parent == Path(self_instruct.__file__).parent / "prompting"


def max_rouge_l(pairs) -> tuple[float, tuple[str, str]]:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return max((scorer.score(a, b)["rougeL"].fmeasure, (a, b)) for a, b in pairs)


def test_bundled_instructions_are_diverse(bundled):
    instructions = [task.instruction for task in bundled]
    score, pair = max_rouge_l(itertools.combinations(instructions, 2))
    assert score <= 0.7, pair


@needs(PAPER_SEEDS)
def test_bundled_instructions_are_our_own(bundled):
    ours = [task.instruction for task in bundled]
    paper = [task.instruction for task in load_seeds(str(PAPER_SEEDS))]
    score, pair = max_rouge_l(itertools.product(ours, paper))
    assert score <= 0.7, pair


# --- the paper's file and fingerprints ------------------------------------------------------


@needs(PAPER_SEEDS)
def test_paper_seed_file_loads_as_is():
    seeds = load_seeds(str(PAPER_SEEDS))
    assert len(seeds) == 175
    assert seeds[1] == SeedTask(
        id="seed_task_1",
        name="antonym_relation",
        instruction="What is the relation between the given pairs?",
        instances=(
            SeedInstance(
                input="Night : Day :: Right : Left",
                output="The relation between the given pairs is that they are opposites.",
            ),
        ),
        is_classification=False,
    )
    assert sum(task.is_classification for task in seeds) == 26


def test_fingerprint_is_stable_and_content_sensitive(tmp_path, bundled):
    assert seeds_fingerprint(bundled) == seeds_fingerprint(load_seeds("bundled"))
    assert re.fullmatch(r"[0-9a-f]{64}", seeds_fingerprint(bundled))
    one = load_seeds(str(write(tmp_path, task_line(), name="a.jsonl")))
    other = load_seeds(str(write(tmp_path, task_line(instruction="Say hi."), name="b.jsonl")))
    assert seeds_fingerprint(one) != seeds_fingerprint(other)


def test_blank_lines_and_bom_are_accepted(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text(
        "\n" + task_line() + "\n\n  \n" + task_line(id="t2") + "\n", encoding="utf-8-sig"
    )
    assert [task.id for task in load_seeds(str(path))] == ["t1", "t2"]


# --- bad input: one message with file, line and fix -----------------------------------------

BAD_FILES = {
    "empty file": ([""], 0, "the file is empty"),
    "only blank lines": (["", "   "], 0, "the file is empty"),
    "invalid json": ([task_line(), '{"id": "t2",, "name": "x"}'], 2, "invalid JSON"),
    "not an object": ([task_line(), "[1, 2]"], 2, "expected a JSON object, got list"),
    "missing field": (
        [json.dumps({"id": "t1", "name": "x", "instances": [], "is_classification": False})],
        1,
        "missing field 'instruction'; add it (a string)",
    ),
    "id not a string": ([task_line(id=7)], 1, "field 'id' must be a string, got int"),
    "label not a bool": (
        [task_line(), task_line(id="t2", is_classification="no")],
        2,
        "field 'is_classification' must be true or false, got str",
    ),
    "instances not a list": (
        [task_line(instances="Hello!")],
        1,
        "field 'instances' must be a list",
    ),
    "empty instruction": ([task_line(instruction="  ")], 1, "'instruction' is empty"),
    "no instances": ([task_line(instances=[])], 1, "'instances' is empty; add at least one"),
    "instance not an object": ([task_line(instances=["Hello!"])], 1, "instance 1: expected an"),
    "instance without output": (
        [task_line(instances=[{"input": ""}])],
        1,
        "instance 1: missing field 'output'",
    ),
    "instance output null": (
        [task_line(instances=[{"input": "", "output": "ok"}, {"input": "a", "output": None}])],
        1,
        "instance 2: field 'output' must be a string, got NoneType",
    ),
    "duplicate id": (
        [task_line(), task_line(id="t2"), "", task_line()],
        4,
        "duplicate id 't1', first used on",
    ),
}


@pytest.mark.parametrize("lines, line, fragment", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_seed_file_fails_with_location_and_fix(tmp_path, lines, line, fragment):
    path = write(tmp_path, *lines, name="my_seeds.jsonl")
    with pytest.raises(SeedFileError) as caught:
        load_seeds(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert fragment in message
    if line:
        assert re.search(rf"my_seeds\.jsonl line {line}\b", message)


def test_invalid_json_names_the_column(tmp_path):
    path = write(tmp_path, '{"id": "t1" "name": "x"}')
    with pytest.raises(SeedFileError, match=r"line 1, column 13: invalid JSON \(Expecting ','"):
        load_seeds(str(path))


def test_duplicate_id_names_both_lines(tmp_path):
    path = write(tmp_path, task_line(), task_line(id="t2"), task_line())
    with pytest.raises(SeedFileError) as caught:
        load_seeds(str(path))
    assert f"{path} line 3: duplicate id 't1', first used on {path} line 1" in str(caught.value)


def test_not_utf8_names_line_and_byte(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes((task_line() + "\n" + task_line(id="t2", name="caf\xe9")).encode("latin-1"))
    with pytest.raises(SeedFileError) as caught:
        load_seeds(str(path))
    message = str(caught.value)
    assert f"{path} line 2: not valid UTF-8 (byte 0xe9" in message
    assert "re-save the file with UTF-8 encoding" in message


def test_missing_file_and_empty_folder_fail_clearly(tmp_path):
    with pytest.raises(SeedFileError, match="seed file not found"):
        load_seeds(str(tmp_path / "nowhere.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeedFileError, match="empty is a folder without seed tasks.*data files"):
        load_seeds(str(tmp_path / "empty"))


def test_a_folder_that_is_no_dataset_is_refused_before_any_walk(tmp_path, monkeypatch):
    """`--seeds /usr` (a typo) had `datasets` list every file below it for minutes, and `--seeds
    /` ended in a traceback: both are refused at once, without reading below the top."""
    tree = tmp_path / "src"
    (tree / "pkg" / "sub").mkdir(parents=True)
    (tree / "pkg" / "sub" / "module.py").write_text("x = 1\n")
    (tree / "README.md").write_text("# a project, not a dataset card\n")
    (tree / "notes.txt").write_text("a text file datasets would read as rows\n")
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: pytest.fail("walked the tree"))
    with pytest.raises(SeedFileError, match="src is a folder without seed tasks: pass a .jsonl"):
        load_seeds(str(tree))
    with pytest.raises(SeedFileError, match="/ is the file system's root, not a seed file"):
        load_seeds("/")


def test_deeply_nested_json_is_one_message(tmp_path):
    path = write(tmp_path, task_line(), "[" * 100_000 + "]" * 100_000)
    with pytest.raises(SeedFileError, match=f"{path} line 2: JSON nested too deeply"):
        load_seeds(str(path))


def test_unreachable_hub_id_fails_clearly(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", True)
    with pytest.raises(SeedFileError, match="no-such-user/no-such-seeds: cannot load seed tasks"):
        load_seeds("no-such-user/no-such-seeds")


# --- dataset folders ------------------------------------------------------------------------


def seed_rows(count: int) -> list[dict]:
    return [
        json.loads(task_line(id=f"t{i}", instruction=f"Task number {i}.")) for i in range(count)
    ]


def test_parquet_folder_loads_like_jsonl(tmp_path):
    folder = tmp_path / "seed_dataset"
    Dataset.from_list(seed_rows(3)).to_parquet(str(folder / "train.parquet"))
    jsonl = write(tmp_path, *(json.dumps(row) for row in seed_rows(3)))
    assert load_seeds(str(folder)) == load_seeds(str(jsonl))


def test_folder_edits_are_never_served_stale(tmp_path):
    """A card with `configs` makes datasets key its cache on the YAML alone; we must not."""
    folder = tmp_path / "seed_dataset"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n"
        "  - split: train\n    path: data/*.parquet\n---\n"
    )
    Dataset.from_list(seed_rows(2)).to_parquet(str(folder / "data" / "train.parquet"))
    assert len(load_seeds(str(folder))) == 2
    Dataset.from_list(seed_rows(3)).to_parquet(str(folder / "data" / "train.parquet"))
    assert len(load_seeds(str(folder))) == 3


def test_bad_folder_row_is_named(tmp_path):
    rows = seed_rows(3)
    rows[1]["instruction"] = ""
    folder = tmp_path / "seed_dataset"
    Dataset.from_list(rows).to_parquet(str(folder / "train.parquet"))
    with pytest.raises(SeedFileError, match=r"seed_dataset row 2: 'instruction' is empty"):
        load_seeds(str(folder))
