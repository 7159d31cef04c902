"""Fine-tune a model on one pinned version of a Self-Instruct dataset (its `sft` configuration).

`--dataset_revision` (a tag such as `v2`, a branch or a commit) is resolved to its commit before
any weight loads, and every model card written (checkpoints, final save, push) names that commit
and the `load_dataset` call that reloads the same rows. The options are TRL's `SFTConfig` and
`ModelConfig` plus the dataset ones below; `--config recipe.yaml` sets them, flags override it.

    # Once: the embedded SmolLM2-135M-Instruct GGUF saved as a checkpoint to train
    python scripts/export_gguf_checkpoint.py --output_dir checkpoints/smollm2-135m-instruct

    # The CPU recipe (a few minutes) on version v2 of a pushed dataset, or on a local folder
    python scripts/sft.py --config scripts/recipes/smollm2_cpu.yaml \
        --dataset_name user/self-instruct-demo --dataset_revision v2

    # LoRA on top of the same recipe
    python scripts/sft.py --config scripts/recipes/smollm2_cpu.yaml \
        --dataset_name user/self-instruct-demo --dataset_revision v2 \
        --use_peft --lora_r 16 --lora_alpha 32 --learning_rate 2.0e-4 \
        --output_dir checkpoints/smollm2-135m-self-instruct-lora

    # A bigger model on 8 GPUs (add a DeepSpeed or FSDP config to shard it), pushed with its card
    accelerate launch --num_processes 8 scripts/sft.py \
        --model_name_or_path HuggingFaceTB/SmolLM2-1.7B-Instruct --bf16 \
        --dataset_name user/self-instruct-demo --dataset_revision v2 \
        --output_dir SmolLM2-1.7B-Self-Instruct --push_to_hub
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from trl import ScriptArguments

# Column sets SFTTrainer trains on as they are; ours is prompt + completion (the `sft` config).
SFT_COLUMNS = ({"prompt", "completion"}, {"messages"}, {"text"})
# Full fine-tuning with AdamW keeps weights, gradients and two moments: 4 copies of the weights.
FULL_TRAINING_COPIES = 4


class UsageError(ValueError):
    """A mistake in the command line or the data it names: reported in one line, no traceback."""


@dataclass
class SelfInstructScriptArguments(ScriptArguments):
    """TRL's dataset arguments plus the revision that `trl sft` does not pass to `load_dataset`."""

    dataset_config: str | None = field(
        default="sft",
        metadata={"help": "Dataset configuration; a Self-Instruct dataset trains on `sft`."},
    )
    dataset_revision: str | None = field(
        default=None,
        metadata={
            "help": "Tag, branch or commit of a Hub dataset (e.g. `v2`); the default branch when "
            "unset. The commit it resolves to is recorded in the model card."
        },
    )


@dataclass(frozen=True)
class DatasetProvenance:
    """What a model was trained on, precisely enough to load the same rows again."""

    name: str
    config: str | None
    revision: str | None = None
    commit: str | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.name).is_dir()

    @property
    def hub_id(self) -> str | None:
        """The Hub repo id, which the card metadata may list under `datasets` (never a path)."""
        return None if self.is_local else self.name

    @property
    def pin(self) -> str:
        """`name@commit` (or the revision when offline, or the bare folder): for messages."""
        at = self.commit or self.revision
        return f"{self.name}@{at}" if at else self.name

    def card_section(self) -> str:
        from huggingface_hub import constants

        where = f"`{self.name}`"
        if self.hub_id:
            url = f"{constants.ENDPOINT}/datasets/{self.name}/tree/{self.commit or self.revision}"
            where = f"[{self.name}]({url}) at revision `{self.revision or 'main'}`"
            where += f" (commit `{self.commit}`)" if self.commit else " (commit not resolved)"
        load_args = ", ".join(repr(a) for a in (self.name, self.config) if a)
        load_rev = f", revision={self.commit!r}" if self.commit else ""
        return (
            f"\n## Training data\n\nThe `{self.config}` configuration of {where}, "
            "Self-Instruct data (Wang et al., 2023):\n\n"
            f"```python\nload_dataset({load_args}{load_rev})\n```\n"
        )

    def write_into_card(self, card_path: Path) -> None:
        """Add the dataset revision and commit to a model card TRL wrote."""
        from huggingface_hub import ModelCard

        card = ModelCard.load(card_path)
        card.data.dataset_config = self.config
        card.data.dataset_revision = self.revision
        card.data.dataset_commit = self.commit
        if "## Training data" not in card.text:
            card.text += self.card_section()
        card.save(card_path)


def resolve_dataset(script_args: SelfInstructScriptArguments) -> DatasetProvenance:
    """Pin a Hub revision to its commit, so the card names exactly the rows trained on."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    name, revision = script_args.dataset_name, script_args.dataset_revision
    if not name:
        raise UsageError("--dataset_name is required: a Hub dataset id or a local dataset folder.")
    local = DatasetProvenance(name, script_args.dataset_config)
    if local.is_local:
        if revision:
            raise UsageError(
                f"--dataset_revision {revision!r} needs a Hub repo; {name} is a folder."
            )
        return local
    if constants.HF_HUB_OFFLINE:
        return DatasetProvenance(name, script_args.dataset_config, revision)
    api = HfApi()
    try:
        info = api.dataset_info(name, revision=revision)
    except RevisionNotFoundError as err:
        refs = api.list_repo_refs(name, repo_type="dataset")
        known = [ref.name for ref in refs.tags + refs.branches]
        raise UsageError(f"Dataset {name} has no revision {revision!r}; it has {known}.") from err
    except RepositoryNotFoundError as err:
        raise UsageError(
            f"Dataset {name!r} is neither a local folder nor a Hub repo this token can read."
        ) from err
    return DatasetProvenance(name, script_args.dataset_config, revision or "main", info.sha)


def load_sft_dataset(script_args: SelfInstructScriptArguments, provenance: DatasetProvenance):
    """Load the pinned configuration and check it has columns SFTTrainer trains on."""
    from datasets import load_dataset

    dataset = load_dataset(
        provenance.name,
        provenance.config,
        revision=provenance.commit or provenance.revision,
        streaming=script_args.dataset_streaming,
    )
    if script_args.dataset_train_split not in dataset:
        raise UsageError(
            f"{provenance.name} ({provenance.config}) has no split "
            f"{script_args.dataset_train_split!r}; it has {list(dataset)}."
        )
    columns = dataset[script_args.dataset_train_split].column_names  # None: a stream, unknown
    if columns is not None and not any(required <= set(columns) for required in SFT_COLUMNS):
        raise UsageError(
            f"{provenance.name} configuration {provenance.config!r} has columns {sorted(columns)}; "
            "SFT needs prompt + completion (the `sft` configuration of a Self-Instruct dataset), "
            "messages, or text."
        )
    return dataset


def check_model_fits(model_args, training_args) -> None:
    """Fail before loading when the weights and optimizer state alone exceed one device's memory.

    Parameters are counted on the meta device (nothing allocated); activations come on top, so
    this catches hopeless runs only. Sharded runs (`accelerate launch` with FSDP or DeepSpeed)
    split the state across processes, and quantized loads shrink it: both are left to them.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if training_args.world_size > 1 or model_args.load_in_4bit or model_args.load_in_8bit:
        return
    name = model_args.model_name_or_path
    try:
        config = AutoConfig.from_pretrained(name, revision=model_args.model_revision)
    except OSError as err:
        raise UsageError(
            f"Cannot load model {name!r}: {err}\nFor the embedded SmolLM2, make the checkpoint "
            f"first: python scripts/export_gguf_checkpoint.py --output_dir {name}"
        ) from err
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    copies = 1 if model_args.use_peft else FULL_TRAINING_COPIES
    needed = params * copies * (4 if model_args.dtype == "float32" else 2)  # "auto": at least 2
    available, device = _device_memory(training_args)
    if needed > available:
        raise UsageError(
            f"{name} has {params / 1e9:.2f}B parameters: training it "
            f"needs at least {needed / 2**30:.1f} GiB, and {device} has {available / 2**30:.1f} "
            "GiB. Try --use_peft, a smaller model, or several GPUs with `accelerate launch`."
        )


def _device_memory(training_args) -> tuple[int, str]:
    """Total bytes of the training device: a refusal must be certain, so no free-memory guess."""
    import torch

    if torch.cuda.is_available() and not training_args.use_cpu:
        return torch.cuda.mem_get_info()[1], torch.cuda.get_device_name()
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's RAM"


def training_splits(dataset, script_args, training_args) -> tuple:
    """The train split, and the test split only when the recipe evaluates during training.

    A Self-Instruct dataset has a `train` split only: asking for evaluation without a test split
    is a mistake to report before the model loads.
    """
    train = dataset[script_args.dataset_train_split]
    if training_args.eval_strategy == "no":
        return train, None
    if script_args.dataset_test_split not in dataset:
        raise UsageError(
            f"--eval_strategy {training_args.eval_strategy} needs the split "
            f"{script_args.dataset_test_split!r}, and the dataset has {list(dataset)}: "
            "set --dataset_test_split or --eval_strategy no."
        )
    return train, dataset[script_args.dataset_test_split]


def base_model_options(model_args, training_args) -> dict:
    """How SFTTrainer loads `--model_name_or_path`: the ModelConfig flags it does not read itself.

    SFTTrainer loads the model from `SFTConfig.model_init_kwargs` only (and adds
    `trust_remote_code` itself); a recipe's own `model_init_kwargs` win over these flags.
    """
    flags = {
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        "attn_implementation": model_args.attn_implementation,
    }
    return flags | (training_args.model_init_kwargs or {})


def make_trainer(provenance: DatasetProvenance, train, evaluation, training_args, model_args):
    """An SFTTrainer whose every card (checkpoints, final save, push) names the dataset commit."""
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    class SelfInstructSFTTrainer(SFTTrainer):
        def create_model_card(self, model_name=None, dataset_name=None, tags=None):
            tags = [*(tags or []), "self-instruct"]
            super().create_model_card(model_name, dataset_name or provenance.hub_id, tags)
            if self.is_world_process_zero():
                provenance.write_into_card(Path(self.args.output_dir) / "README.md")

    training_args.model_init_kwargs = base_model_options(model_args, training_args)
    return SelfInstructSFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
    )


def save_and_publish(trainer, provenance: DatasetProvenance) -> None:
    """Weights, the loss of every logged step and the card in the output folder; then the Hub."""
    output_dir = trainer.args.output_dir
    trainer.save_model()
    trainer.save_state()  # trainer_state.json, which the README's loss figures come from
    trainer.create_model_card(model_name=Path(output_dir).name)
    trainer.accelerator.print(f"Trained on {provenance.pin}: model and card in {output_dir}.")
    if trainer.args.push_to_hub:
        trainer.push_to_hub(commit_message=f"Fine-tuned on {provenance.pin}")
        trainer.accelerator.print(f"Pushed to {trainer.hub_model_id}.")


def main(script_args, training_args, model_args) -> None:
    """Pin the dataset and check the model fits before any weight loads; then train and save."""
    provenance = resolve_dataset(script_args)
    dataset = load_sft_dataset(script_args, provenance)
    train, evaluation = training_splits(dataset, script_args, training_args)
    check_model_fits(model_args, training_args)
    trainer = make_trainer(provenance, train, evaluation, training_args, model_args)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    save_and_publish(trainer, provenance)
    # Close the trackers and the process group: all that Trainer.end() (transformers 5.18+) does.
    trainer.accelerator.end_training()


def make_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from trl import ModelConfig, SFTConfig, TrlParser

    return TrlParser((SelfInstructScriptArguments, SFTConfig, ModelConfig), prog=prog)


if __name__ == "__main__":
    parser = make_parser()
    try:
        main(*parser.parse_args_and_config())
    except UsageError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
