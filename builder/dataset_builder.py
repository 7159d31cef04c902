"""The `datasets` builder: Self-Instruct data as three configurations of one generated dataset.

    >>> from self_instruct.dataset_builder import SelfInstruct
    >>> builder = SelfInstruct(config_name="instances", num_instructions=50, run_dir="runs/demo")
    >>> # or SelfInstruct(..., backend_instance=my_backend): any `self_instruct.backends.Backend`
    >>> builder.download_and_prepare(); ds = builder.as_dataset(split="train")
    >>> for row in builder.as_streaming_dataset(split="train"): ...  # rows as they are accepted

All configurations of one run share one run directory, where the pipeline keeps its run log:
the first one prepared generates, the others replay the log, and a run stopped halfway resumes
there (`download_and_prepare` deletes its own unfinished output on any error, so the
pipeline, not the builder cache, must be what keeps generated work). Its rows are those an
export writes (`export/rows.py`'s `run_rows`), its own configuration's taken from them; an export
itself (`run.py`) makes no builder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

import datasets
from datasets.builder import Key

from self_instruct.about import CITATION
from self_instruct.backends import resolve_defaults
from self_instruct.backends.base import Backend
from self_instruct.config import PipelineConfig
from self_instruct.export.rows import FEATURES, run_rows
from self_instruct.generation.pipeline import Pipeline, run_identity
from self_instruct.layout import CONFIG_DESCRIPTIONS, CONFIG_NAMES, DEFAULT_CONFIG
from self_instruct.prompting.prompts import load_templates
from self_instruct.prompting.seeds import load_seeds, prompting_seeds


@dataclass
class SelfInstructConfig(datasets.BuilderConfig, PipelineConfig):
    """A configuration name (`instructions`, `instances`, `sft`) plus the run's options.

    run_dir: where the run log lives; by default a folder in the builder's cache named by the run
    identity (`default_run_dir`), so that the three configurations of one run share it.
    """

    run_dir: str | None = None

    def __post_init__(self):
        super().__post_init__()  # datasets' own checks of the name
        if self.name not in CONFIG_NAMES:
            raise ValueError(f"config name {self.name!r} is not one of {CONFIG_NAMES}")

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(**{f.name: getattr(self, f.name) for f in fields(PipelineConfig)})


class SelfInstruct(datasets.GeneratorBasedBuilder):
    """Generates Self-Instruct data with a language model, filtered by ROUGE-L as it streams."""

    BUILDER_CONFIG_CLASS = SelfInstructConfig
    BUILDER_CONFIGS = [
        SelfInstructConfig(name=n, description=CONFIG_DESCRIPTIONS[n]) for n in CONFIG_NAMES
    ]
    DEFAULT_CONFIG_NAME = DEFAULT_CONFIG
    DEFAULT_WRITER_BATCH_SIZE = 64  # rows arrive slowly: flush the Arrow writer often

    def __init__(
        self,
        *args,
        backend_instance: Backend | None = None,
        cache_dir: str | None = None,
        **kwargs,
    ):
        """`backend_instance` generates for this builder's run (else the backend the `backend`
        option names is loaded when rounds remain); an object, not an option, it stays out of
        the config and its hash (`backend=` is that option: "transformers", "tgi", "openai")."""
        self.backend_instance = backend_instance
        # The default run directories live in the cache datasets uses, read as datasets reads it
        self.cache_root = Path(cache_dir or datasets.config.HF_DATASETS_CACHE).expanduser()
        super().__init__(*args, cache_dir=cache_dir, **kwargs)
        # datasets sets config kwargs on a copy of a predefined config, after its __post_init__
        self.config.validate()

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=CONFIG_DESCRIPTIONS[self.config.name],
            features=FEATURES[self.config.name],
            citation=CITATION,
            homepage="https://aclanthology.org/2023.acl-long.754/",
        )

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={})]

    def _run_dir(self) -> Path:
        if self.config.run_dir:
            return Path(self.config.run_dir)
        return default_run_dir(self.cache_root, self.config.pipeline_config())

    def _generate_examples(self):
        """This configuration's rows of the run: replayed from the log, then generated if due."""
        pipeline = Pipeline(self.config.pipeline_config(), self._run_dir(), self.backend_instance)
        rows = run_rows(pipeline, pipeline.seed_tasks, pipeline.config, pipeline.templates)
        mine = (row for name, row in rows if name == self.config.name)
        for idx, row in enumerate(mine):
            yield Key(0, idx), row


def default_run_dir(cache_root: Path, config: PipelineConfig) -> Path:
    """A builder's run directory in its cache, named by the run identity (`run_identity`).

    The identity is what the run log records and checks on reopening: the options that decide
    the data, with 'auto' values resolved, and the hashes of the seeds and prompt templates.
    Naming the folder by it, rather than by every option, lets a run asked later for more
    instructions, or sent to other endpoints, reopen its own log and extend it.
    """
    config = resolve_defaults(config)
    seeds = prompting_seeds(load_seeds(config.seeds), config.classification_only)
    identity = run_identity(config, seeds, load_templates(config.prompt_templates))
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return cache_root / "self_instruct_runs" / hashlib.sha256(canonical.encode()).hexdigest()[:16]
