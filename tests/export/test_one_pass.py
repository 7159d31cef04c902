"""One way from the loop to the rows: an export drives the pipeline once and writes the three
configurations from that pass, with no `datasets` builder and no cache folder of its own; the
builder gives the same rows, its configuration's share of that one pass."""

from __future__ import annotations

import datasets
import pyarrow.parquet as pq
import pytest

from self_instruct.config import PipelineConfig
from self_instruct.dataset_builder import SelfInstruct
from self_instruct.export.rows import run_rows, seed_sft_rows
from self_instruct.generation.pipeline import Pipeline
from self_instruct.layout import CONFIG_NAMES, RUN_DIR
from self_instruct.prompting.prompts import load_templates
from self_instruct.prompting.seeds import load_seeds
from self_instruct.run import run_to_folder

OPTIONS = {"num_instructions": 6, "batch_size": 4, "seed": 3}


@pytest.fixture
def passes(monkeypatch) -> list[str]:
    """What an export starts, as it starts it: "pipeline" for each pass over a `Pipeline`,
    "builder" for each `datasets` builder made (a builder prepares its own cache folder)."""
    started: list[str] = []
    real_iter, real_init = Pipeline.__iter__, datasets.DatasetBuilder.__init__

    def pipeline_pass(self):
        started.append("pipeline")
        return real_iter(self)

    def builder_made(self, *args, **kwargs):
        started.append("builder")
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "__iter__", pipeline_pass)
    monkeypatch.setattr(datasets.DatasetBuilder, "__init__", builder_made)
    return started


def _parquet_rows(folder, result) -> dict[str, list[dict]]:
    return {
        name: pq.read_table(folder / path).to_pylist()
        for name, (path,) in result.data_files.items()
    }


@pytest.mark.parametrize("include_seed_tasks", [True, False])
def test_an_export_writes_every_configuration_from_one_pass(
    tmp_path, scripted_backend, passes, include_seed_tasks
):
    """One pipeline pass and no builder, for a new run and for a finished one exported again;
    the Parquet files hold exactly that pass's rows, the seed tasks' `sft` rows last (or none),
    and the export leaves no scratch file behind (it was a builder with a cache folder)."""
    config = PipelineConfig(**OPTIONS, sft_include_seed_tasks=include_seed_tasks)
    folder = tmp_path / "out"
    first = run_to_folder(config, folder, command="test", backend=scripted_backend)
    again = run_to_folder(config, folder, command="test")
    assert passes == ["pipeline", "pipeline"]
    assert _parquet_rows(folder, again) == _parquet_rows(folder, first)
    assert not [p for p in folder.rglob("*") if p.is_file() and p.suffix == ".arrow"]
    assert not (folder / ".self-instruct" / "export").exists()

    replay = Pipeline(config, folder / RUN_DIR, progress=False)
    expected: dict[str, list[dict]] = {name: [] for name in CONFIG_NAMES}
    for name, row in run_rows(replay, replay.seed_tasks, replay.config, replay.templates):
        expected[name].append(row)
    assert _parquet_rows(folder, again) == expected
    assert all(expected.values())
    seed_rows = list(seed_sft_rows(load_seeds(), config.seed, load_templates()))
    sft = expected["sft"]
    generated = sft[: len(sft) - len(seed_rows)] if include_seed_tasks else sft
    assert sft[len(generated) :] == (seed_rows if include_seed_tasks else [])
    assert generated and all(row["instance_id"].startswith("r0") for row in generated)


def test_the_builder_gives_the_rows_of_the_export(tmp_path, scripted_backend):
    """Each configuration's builder, over the run an export wrote (the seed tasks' `sft` rows
    left out), gives the rows of that configuration's Parquet file."""
    options = {**OPTIONS, "sft_include_seed_tasks": False}
    folder = tmp_path / "out"
    result = run_to_folder(
        PipelineConfig(**options), folder, command="test", backend=scripted_backend
    )
    exported = _parquet_rows(folder, result)
    for name in CONFIG_NAMES:
        builder = SelfInstruct(
            config_name=name,
            cache_dir=str(tmp_path / "cache"),
            run_dir=str(folder / RUN_DIR),
            **options,
        )
        builder.download_and_prepare()
        assert builder.as_dataset(split="train").to_list() == exported[name] != []
