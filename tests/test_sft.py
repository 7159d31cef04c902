"""scripts/sft.py: TRL SFT on a pushed `sft` configuration, pinned to its revision and commit.

The training test runs the script as a user would (a subprocess, the CPU recipe, flags on top)
on the real SmolLM2-135M-Instruct checkpoint, from the local test Hub.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from _sft import SCRIPTS, load_script, smollm2_checkpoint
from huggingface_hub import HfApi, ModelCard
from local_hub import LocalHub

from self_instruct.hub import push_folder

ALICE = "token-alice-0123456789"
REPO = "alice/tiny-self-instruct"
TUNED = "alice/smollm2-tuned"
RECIPE = SCRIPTS / "recipes" / "smollm2_cpu.yaml"

sft = load_script("sft")

SFT_ROWS = [
    ("Give a synonym for the word.\n\nhappy", "joyful"),
    ("Name the capital city of the country.\n\nFrance", "Paris"),
]
INSTANCE_ROWS = [{"id": "i0", "instruction": "Add the numbers.", "input": "2, 3", "output": "5"}]


def write_dataset(folder: Path, sft_rows: list[tuple[str, str]]) -> Path:
    """A dataset folder laid out like the pipeline's: card with `configs:`, one shard a config."""
    rows = {
        "sft": [
            {
                "id": f"s{i}",
                "instance_id": f"i{i}",
                "template": 0,
                "prompt": [{"role": "user", "content": prompt}],
                "completion": [{"role": "assistant", "content": answer}],
            }
            for i, (prompt, answer) in enumerate(sft_rows)
        ],
        "instances": INSTANCE_ROWS,
    }
    configs = []
    for name, records in rows.items():
        (folder / "data").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(records).to_parquet(folder / "data" / f"{name}-0.parquet")
        shard = f"data/{name}-0.parquet"
        configs.append(f"- config_name: {name}\n  data_files:\n  - split: train\n    path: {shard}")
    (folder / "README.md").write_text("---\nconfigs:\n" + "\n".join(configs) + "\n---\n")
    return folder


def script_args(**kwargs):
    return sft.SelfInstructScriptArguments(**kwargs)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    return smollm2_checkpoint(tmp_path_factory)


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", users={"alice": ALICE}) as hub:
        yield hub


@pytest.mark.slow
def test_trains_from_a_hub_revision_pushes_and_the_card_names_it(hub, tmp_path, checkpoint):
    v1 = push_folder(write_dataset(tmp_path / "v1", SFT_ROWS), REPO, token=ALICE)
    v2 = push_folder(write_dataset(tmp_path / "v2", SFT_ROWS[:1]), REPO, token=ALICE)
    assert (v1.tag, v2.tag) == ("v1", "v2")
    out = tmp_path / "tuned"
    command = [sys.executable, str(SCRIPTS / "sft.py"), "--config", str(RECIPE)]
    command += ["--model_name_or_path", str(checkpoint), "--output_dir", str(out)]
    command += ["--dataset_name", REPO, "--dataset_revision", "v1"]
    # Both rows in every step: the loss of one fixed batch must fall.
    command += ["--max_steps", "4", "--per_device_train_batch_size", "2"]
    command += ["--push_to_hub", "--hub_model_id", TUNED]
    subprocess.run(command, env=hub.env() | {"HF_TOKEN": ALICE}, check=True, timeout=600)

    state = json.loads((out / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 4 and losses[-1] < losses[0]
    card = ModelCard.load(out / "README.md")
    assert card.data.datasets == REPO
    assert (card.data.dataset_revision, card.data.dataset_commit) == ("v1", v1.commit)
    assert f"load_dataset('{REPO}', 'sft', revision='{v1.commit}')" in card.text
    assert {"README.md", "model.safetensors"} <= set(HfApi(token=ALICE).list_repo_files(TUNED))
    assert ModelCard.load(TUNED, token=ALICE).data.dataset_commit == v1.commit


def test_unknown_revision_lists_the_known_ones(hub, tmp_path):
    push_folder(write_dataset(tmp_path / "v1", SFT_ROWS), REPO, token=ALICE)
    with pytest.raises(ValueError, match=r"has no revision 'v9'; it has \['v1', 'main'\]"):
        sft.resolve_dataset(script_args(dataset_name=REPO, dataset_revision="v9"))


def test_hub_revision_resolves_to_its_commit(hub, tmp_path):
    v1 = push_folder(write_dataset(tmp_path / "v1", SFT_ROWS), REPO, token=ALICE)
    push_folder(write_dataset(tmp_path / "v2", SFT_ROWS[:1]), REPO, token=ALICE)
    pinned = sft.resolve_dataset(script_args(dataset_name=REPO, dataset_revision="v1"))
    assert (pinned.revision, pinned.commit, pinned.hub_id) == ("v1", v1.commit, REPO)
    train = sft.load_sft_dataset(script_args(dataset_name=REPO), pinned)["train"]
    assert train["completion"] == [[{"role": "assistant", "content": a}] for _, a in SFT_ROWS]


def test_local_folder_has_no_revision(tmp_path):
    folder = str(write_dataset(tmp_path / "ds", SFT_ROWS))
    local = sft.resolve_dataset(script_args(dataset_name=folder))
    assert (local.hub_id, local.revision, local.commit) == (None, None, None)
    with pytest.raises(ValueError, match="needs a Hub repo"):
        sft.resolve_dataset(script_args(dataset_name=folder, dataset_revision="v1"))


def test_configuration_without_sft_columns_is_refused(tmp_path):
    args = script_args(dataset_name=str(write_dataset(tmp_path / "ds", SFT_ROWS)))
    args.dataset_config = "instances"
    with pytest.raises(ValueError, match=r"'instances' has columns \['id', 'input', .*prompt \+"):
        sft.load_sft_dataset(args, sft.resolve_dataset(args))


def test_model_too_big_for_the_machine_is_refused_before_loading(tmp_path):
    from transformers import LlamaConfig

    # A 70B-parameter shape: config only, the check builds it on the meta device.
    big = LlamaConfig(
        hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_key_value_heads=8
    )
    big.save_pretrained(tmp_path / "big")
    _, training_args, model_args = sft.make_parser().parse_args_and_config(
        ["--config", str(RECIPE), "--model_name_or_path", str(tmp_path / "big"), "--use_peft"]
    )
    with pytest.raises(ValueError, match=r"has 70.\d\dB parameters.*Try --use_peft"):
        sft.check_model_fits(model_args, training_args)


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    missing = str(tmp_path / "smollm2")
    _, training_args, model_args = sft.make_parser().parse_args_and_config(
        ["--config", str(RECIPE), "--model_name_or_path", missing]
    )
    with pytest.raises(ValueError, match=f"export_gguf_checkpoint.py --output_dir {missing}"):
        sft.check_model_fits(model_args, training_args)


def test_recipe_values_and_flags_override_them():
    script, training, model = sft.make_parser().parse_args_and_config(
        ["--config", str(RECIPE), "--max_steps", "3", "--dataset_name", "a/b"]
    )
    assert (script.dataset_name, script.dataset_config, script.dataset_revision) == (
        "a/b",
        "sft",
        None,
    )
    assert (training.max_steps, training.per_device_train_batch_size, training.logging_steps) == (
        3,
        8,
        1,
    )
    assert (training.use_cpu, training.bf16, training.report_to) == (True, False, [])
    assert model.model_name_or_path == "checkpoints/smollm2-135m-instruct"
