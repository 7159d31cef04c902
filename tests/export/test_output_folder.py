"""The output folder: every configuration loads with plain `load_dataset`, never stale."""

from __future__ import annotations

import datasets
import pytest

from self_instruct.config import PipelineConfig
from self_instruct.dataset_builder import SelfInstruct
from self_instruct.errors import OutputFolderError
from self_instruct.export.folder import prepare_output
from self_instruct.export.rows import FEATURES
from self_instruct.layout import CONFIG_NAMES
from self_instruct.prompting.seeds import load_seeds
from self_instruct.run import run_to_folder
from self_instruct.testing.scripted_backend import ScriptedBackend


@pytest.fixture
def scripted():
    """The scripted backends passed to this test's runs, one fresh backend per run."""
    return []


def fresh(backends: list) -> ScriptedBackend:
    backends.append(ScriptedBackend())
    return backends[-1]


def write(folder, backends, **options):
    config = PipelineConfig(**{"num_instructions": 6, "batch_size": 4, **options})
    prepare_output(folder, resume=False, overwrite=True)
    return run_to_folder(config, folder, command="test", backend=fresh(backends))


def test_every_configuration_loads_from_the_folder(tmp_path, scripted):
    result = write(tmp_path / "out", scripted)
    assert len(scripted) == 1  # one generation serves all three configurations
    for name in CONFIG_NAMES:
        ds = datasets.load_dataset(str(tmp_path / "out"), name, split="train")
        assert ds.features == FEATURES[name]
        assert len(ds) == result.num_rows[name] > 0
    instructions = datasets.load_dataset(str(tmp_path / "out"), "instructions", split="train")
    assert len(instructions) == 6
    assert not (tmp_path / "out" / "data" / ".instances.parquet.tmp").exists()


def test_rewritten_folder_is_not_served_from_a_stale_cache(tmp_path, scripted):
    folder = tmp_path / "out"
    write(folder, scripted, seed=1)
    first = datasets.load_dataset(str(folder), "instances", split="train")["instruction"]
    write(folder, scripted, seed=2)
    second = datasets.load_dataset(str(folder), "instances", split="train")["instruction"]
    assert first != second
    assert len(list((folder / "data").glob("instances-*.parquet"))) == 1  # old shard removed


def test_sft_rows_are_ready_for_trl(tmp_path, scripted):
    write(tmp_path / "out", scripted)
    sft = datasets.load_dataset(str(tmp_path / "out"), "sft", split="train")
    instances = datasets.load_dataset(str(tmp_path / "out"), "instances", split="train")
    by_id = {row["id"]: row for row in instances}
    generated = [row for row in sft if row["instance_id"] in by_id]
    for row in generated:
        instance = by_id[row["instance_id"]]
        assert [m["role"] for m in row["prompt"]] == ["user"]
        assert row["completion"] == [{"role": "assistant", "content": instance["output"]}]
        assert instance["instruction"] in row["prompt"][0]["content"]
        # Half of the inputs lose their field name at fine-tuning time, as in the paper.
        unnamed = instance["input"].split(":", 1)[-1].strip()
        assert unnamed in row["prompt"][0]["content"]
    seeds = [row for row in sft if row["instance_id"].startswith("seed_task_")]
    assert len(seeds) == sum(len(task.instances) for task in load_seeds())
    assert len(generated) + len(seeds) == len(sft)
    assert len(set(sft["template"])) > 1  # layouts vary per row, as in the paper


def test_streaming_yields_rows_before_the_run_ends(tmp_path, scripted):
    builder = SelfInstruct(
        config_name="instances",
        num_instructions=40,
        batch_size=2,
        run_dir=str(tmp_path / "run"),
        backend_instance=fresh(scripted),
    )
    first = next(iter(builder.as_streaming_dataset(split="train")))
    assert first["instruction"]
    rounds_so_far = len(scripted[0].calls)
    # One round (instructions, classify, instances) and the next round's instruction prompts,
    # which the scheduler sends before handing the first round over: not the whole run.
    assert rounds_so_far <= 4


def test_output_folder_is_not_clobbered(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="--overwrite"):
        prepare_output(folder, resume=False, overwrite=False)
    assert (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(OutputFolderError, match="no run to resume"):
        prepare_output(tmp_path / "empty", resume=True, overwrite=False)


def test_builder_config_rejects_bad_values():
    with pytest.raises(ValueError, match="--num-instructions must be >= 1, got 0"):
        SelfInstruct(config_name="instances", num_instructions=0)
    with pytest.raises(ValueError, match="--rouge-threshold must be in"):
        SelfInstruct(config_name="sft", rouge_threshold=1.5)
    with pytest.raises(ValueError, match="not found"):
        SelfInstruct(config_name="everything")
