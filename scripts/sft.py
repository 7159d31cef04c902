"""Fine-tune a model on one pinned version of a Self-Instruct dataset (its `sft` configuration).

`--dataset-revision` (a tag such as `v2`, a branch or a commit) is resolved to its commit before
any weight loads, and every model card written (checkpoints, final save, push) names that commit
and the `load_dataset` call that reloads the same rows. The options are TRL's `SFTConfig` and
`ModelConfig` plus the dataset ones (sft_dataset.py); `--config recipe.yaml` sets them, flags
override it.

    # Once: the embedded SmolLM2-135M-Instruct GGUF saved as a checkpoint to train
    python scripts/export_gguf_checkpoint.py --output-dir checkpoints/smollm2-135m-instruct

    # The CPU recipe (a few minutes) on version v2 of a pushed dataset, or on a local folder
    python scripts/sft.py --config scripts/recipes/smollm2_cpu.yaml \
        --dataset-name user/self-instruct-demo --dataset-revision v2

    # LoRA on top of the same recipe
    python scripts/sft.py --config scripts/recipes/smollm2_cpu.yaml \
        --dataset-name user/self-instruct-demo --dataset-revision v2 \
        --use-peft --lora-r 16 --lora-alpha 32 --learning-rate 2.0e-4 \
        --output-dir checkpoints/smollm2-135m-self-instruct-lora

    # A bigger model on 8 GPUs (add a DeepSpeed or FSDP config to shard it), pushed with its card
    accelerate launch --num-processes 8 scripts/sft.py \
        --model-name-or-path HuggingFaceTB/SmolLM2-1.7B-Instruct --bf16 \
        --dataset-name user/self-instruct-demo --dataset-revision v2 \
        --output-dir SmolLM2-1.7B-Self-Instruct --push-to-hub
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sft_dataset import (
    DatasetProvenance,
    SelfInstructScriptArguments,
    UsageError,
    load_sft_dataset,
    resolve_dataset,
    training_splits,
)

# Full fine-tuning with AdamW keeps weights, gradients and two moments: 4 copies of the weights.
FULL_TRAINING_COPIES = 4


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
            f"first: python scripts/export_gguf_checkpoint.py --output-dir {name}"
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
            "GiB. Try --use-peft, a smaller model, or several GPUs with `accelerate launch`."
        )


def _device_memory(training_args) -> tuple[int, str]:
    """Total bytes of the training device: a refusal must be certain, so no free-memory guess."""
    import torch

    if torch.cuda.is_available() and not training_args.use_cpu:
        return torch.cuda.mem_get_info()[1], torch.cuda.get_device_name()
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's RAM"


def base_model_options(model_args, training_args) -> dict:
    """How SFTTrainer loads `--model-name-or-path`: the ModelConfig flags it does not read itself.

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

    from self_instruct.cli.args import strict

    types = (SelfInstructScriptArguments, SFTConfig, ModelConfig)
    return strict(TrlParser)(types, prog=prog)


if __name__ == "__main__":
    parser = make_parser()
    try:
        main(*parser.parse_args_and_config())
    except UsageError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
