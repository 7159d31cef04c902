"""What scripts/sft.py trains on: one revision of a dataset, pinned to its commit and checked.

`resolve_dataset` turns `--dataset-revision` (a tag, a branch, a commit) into the commit it names
before any weight loads; `DatasetProvenance` writes that commit and the `load_dataset` call that
reloads the same rows into every model card; `load_sft_dataset` and `training_splits` refuse,
in one line, data SFTTrainer cannot train on. Imported by sft.py, which runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trl import ScriptArguments

# Column sets SFTTrainer trains on as they are; ours is prompt + completion (the `sft` config).
SFT_COLUMNS = ({"prompt", "completion"}, {"messages"}, {"text"})


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
        raise UsageError("--dataset-name is required: a Hub dataset id or a local dataset folder.")
    local = DatasetProvenance(name, script_args.dataset_config)
    if local.is_local:
        if revision:
            raise UsageError(
                f"--dataset-revision {revision!r} needs a Hub repo; {name} is a folder."
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
            f"--eval-strategy {training_args.eval_strategy} needs the split "
            f"{script_args.dataset_test_split!r}, and the dataset has {list(dataset)}: "
            "set --dataset-test-split or --eval-strategy no."
        )
    return train, dataset[script_args.dataset_test_split]
