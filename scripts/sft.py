"""
# The embedded SmolLM2-135M-Instruct as a checkpoint to train (once)
```bash
python scripts/export_gguf_checkpoint.py --output_dir checkpoints/smollm2-135m-instruct
```

# CPU recipe: a few minutes on a laptop
```bash
python scripts/sft.py \
    --config scripts/recipes/smollm2_cpu.yaml \
    --dataset_name user/self-instruct-demo \
    --dataset_revision v2 \
    --output_dir checkpoints/smollm2-135m-self-instruct
```

# Full training from a pushed version, pushed to the Hub
```bash
python scripts/sft.py \
    --model_name_or_path HuggingFaceTB/SmolLM2-360M-Instruct \
    --dataset_name user/self-instruct-demo \
    --dataset_config sft \
    --dataset_revision v2 \
    --learning_rate 2.0e-5 \
    --num_train_epochs 2 \
    --per_device_train_batch_size 8 \
    --output_dir SmolLM2-360M-Self-Instruct \
    --push_to_hub
```

# LoRA
```bash
python scripts/sft.py \
    --config scripts/recipes/smollm2_cpu.yaml \
    --dataset_name user/self-instruct-demo \
    --dataset_revision v2 \
    --use_peft \
    --lora_r 16 \
    --lora_alpha 32 \
    --learning_rate 2.0e-4 \
    --output_dir checkpoints/smollm2-135m-self-instruct-lora
```

# Several GPUs or nodes: the same command under `accelerate launch` (add e.g. a DeepSpeed config)
```bash
accelerate launch --num_processes 8 scripts/sft.py \
    --model_name_or_path HuggingFaceTB/SmolLM2-1.7B-Instruct \
    --dataset_name user/self-instruct-demo \
    --dataset_revision v2 \
    --bf16 \
    --output_dir SmolLM2-1.7B-Self-Instruct
```
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
        raise ValueError("--dataset_name is required: a Hub dataset id or a local dataset folder.")
    local = DatasetProvenance(name, script_args.dataset_config)
    if local.is_local:
        if revision:
            raise ValueError(
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
        raise ValueError(f"Dataset {name} has no revision {revision!r}; it has {known}.") from err
    except RepositoryNotFoundError as err:
        raise ValueError(
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
        raise ValueError(
            f"{provenance.name} ({provenance.config}) has no split "
            f"{script_args.dataset_train_split!r}; it has {list(dataset)}."
        )
    columns = dataset[script_args.dataset_train_split].column_names  # None: a stream, unknown
    if columns is not None and not any(required <= set(columns) for required in SFT_COLUMNS):
        raise ValueError(
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
        raise ValueError(
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
        raise ValueError(
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


def make_trainer(provenance: DatasetProvenance, **kwargs):
    """An SFTTrainer whose every card (checkpoints, final save, push) names the dataset commit."""
    from trl import SFTTrainer

    class SelfInstructSFTTrainer(SFTTrainer):
        def create_model_card(self, model_name=None, dataset_name=None, tags=None):
            tags = [*(tags or []), "self-instruct"]
            super().create_model_card(model_name, dataset_name or provenance.hub_id, tags)
            if self.is_world_process_zero():
                provenance.write_into_card(Path(self.args.output_dir) / "README.md")

    return SelfInstructSFTTrainer(**kwargs)


def main(script_args, training_args, model_args) -> None:
    import transformers
    from packaging.version import Version
    from trl import get_peft_config, get_quantization_config

    provenance = resolve_dataset(script_args)
    dataset = load_sft_dataset(script_args, provenance)
    check_model_fits(model_args, training_args)
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {}),
    }
    wants_eval = training_args.eval_strategy != "no"
    trainer = make_trainer(
        provenance,
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=dataset[script_args.dataset_test_split] if wants_eval else None,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json: the loss of every logged step, next to the model
    trainer.create_model_card(model_name=Path(training_args.output_dir).name)
    trainer.accelerator.print(f"Model and card saved to {training_args.output_dir}.")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=provenance.hub_id)
        trainer.accelerator.print(f"Model pushed to {trainer.hub_model_id}.")
    if Version(transformers.__version__) >= Version("5.18.0"):  # as trl/scripts/sft.py does
        trainer.end()  # finish the trackers, destroy the process group


def make_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from trl import ModelConfig, SFTConfig, TrlParser

    return TrlParser((SelfInstructScriptArguments, SFTConfig, ModelConfig), prog=prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
