"""The names a Self-Instruct dataset is made of, declared once: its configurations and its files.

Every module that names a configuration, the card, a data or figure folder or the run directory
imports it from here, so the builder, the output folder, the card, a push and the CLI can never
disagree about what a dataset folder holds:

    DIR/README.md                      CARD: the dataset card, whose YAML `configs:` name the data
    DIR/data/<config>-<hash>.parquet   DATA_DIR: one file per configuration
    DIR/plots/<figure>-<hash>.png      PLOTS_DIR: the card's figures
    DIR/.self-instruct/                RUN_DIR: the run log, options and manifest (never uploaded)
"""

from __future__ import annotations

# The configurations of one generated dataset, in the order the card lists them.
CONFIG_NAMES = ("instructions", "instances", "sft")
DEFAULT_CONFIG = "instances"  # the paper's layout: what `load_dataset(repo)` gives
# One sentence each: the builder's DatasetInfo and the card's table of configurations.
CONFIG_DESCRIPTIONS = {
    "instructions": "One row per accepted instruction, with its ROUGE-L provenance.",
    "instances": "One row per kept (instruction, input, output) instance: the paper's layout.",
    "sft": "Conversational prompt-completion rows for TRL's `SFTTrainer`: every instance and, as "
    "in the paper's fine-tuning data, the seed tasks' own.",
}
SPLIT = "train"  # the only split: Self-Instruct data has no held-out part

CARD = "README.md"
DATA_DIR = "data"
PLOTS_DIR = "plots"

RUN_DIR = ".self-instruct"  # inside an output folder: the run's own files, never uploaded
CONFIG_FILE = "config.json"  # in RUN_DIR: a readable copy of the run identity
LOG_FILE = "log.jsonl"  # in RUN_DIR: the run log
OPTIONS_FILE = "options.json"  # in RUN_DIR: every option, so that --resume needs none
MANIFEST = "manifest.json"  # in RUN_DIR: the files exports moved into the folder
LOCK_FILE = "lock"  # in RUN_DIR: held by the one process that writes the folder
EXPORTED_FROM = "exported-from.json"  # in RUN_DIR: the rounds of the log the export was built from
STAGE_DIR = f"{RUN_DIR}/export"  # an export is written here, then moved into place
AUDIT_DIR = f"{RUN_DIR}/audit"  # the audit's own run log
