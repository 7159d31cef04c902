"""One --seed decides the data: same seed, byte-identical Parquet files; other seed, other rows.

Checked through the real CLI with the scripted backend (tests/cli_runs.py, in subprocesses) and with
the real SmolLM2 model through the transformers backend (in-process, tiny settings, each run once
per module).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import data_rows, run_cli

from self_instruct.layout import CONFIG_NAMES

SCRIPTED = ["generate", "--num-instructions", "16", "--batch-size", "4"]
REAL = [
    "generate",
    "--num-instructions", "2",
    "--max-new-tokens", "48",
    "--instance-max-new-tokens", "32",
    "--batch-size", "4",
    "--patience", "3",
]  # fmt: skip


def parquet_files(folder: Path) -> dict[str, bytes]:
    """The data files by name: their names carry a content hash, their bytes are the data."""
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def scripted_run(folder: Path, seed: int) -> Path:
    done = run_cli([*SCRIPTED, "--seed", str(seed), "--output", str(folder)])
    assert done.returncode == 0, done.stderr
    return folder


def test_scripted_runs_same_seed_same_bytes_other_seed_other_data(tmp_path):
    first = scripted_run(tmp_path / "a", seed=1)
    again = scripted_run(tmp_path / "b", seed=1)
    other = scripted_run(tmp_path / "c", seed=2)
    assert len(parquet_files(first)) == len(CONFIG_NAMES)
    assert parquet_files(first) == parquet_files(again)
    rows, other_rows = data_rows(first), data_rows(other)
    for name in CONFIG_NAMES:
        assert rows[name] and other_rows[name]
        assert rows[name] != other_rows[name]


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> dict[str, Path]:
    """Three tiny real-model runs in this process (the model loads once): seed 1 twice, seed 12.

    One torch thread: on a busy 2-core machine two threads spin against other processes and the
    same generation measured 5 s to 3 min; one thread takes ~8 s whatever the load.
    """
    import torch

    from self_instruct.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folders = {}
    try:
        # Seeds whose tiny runs keep an instance (the 135M model rarely writes one at 32 tokens).
        for name, seed in (("first", 1), ("again", 1), ("other", 12)):
            folders[name] = tmp_path_factory.mktemp(name) / "out"
            main([*REAL, "--seed", str(seed), "--output", str(folders[name])])
    finally:
        torch.set_num_threads(threads)
    return folders


@pytest.mark.slow
def test_real_model_same_seed_gives_byte_identical_parquet(real_runs):
    first, again = parquet_files(real_runs["first"]), parquet_files(real_runs["again"])
    assert len(first) == len(CONFIG_NAMES)
    assert first == again
    assert data_rows(real_runs["first"])["instructions"], "the tiny run accepted nothing"


@pytest.mark.slow
def test_real_model_other_seed_gives_other_data(real_runs):
    first, other = data_rows(real_runs["first"]), data_rows(real_runs["other"])
    assert first["instructions"] and other["instructions"]
    assert [r["instruction"] for r in first["instructions"]] != [
        r["instruction"] for r in other["instructions"]
    ]
