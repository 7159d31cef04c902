"""The real SmolLM2 model through the real pipeline on real seeds, into a loadable folder."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import MISSING, fields

import datasets
import pytest
from rouge_score import rouge_scorer

from self_instruct.config import PipelineConfig
from self_instruct.layout import CONFIG_NAMES
from self_instruct.prompting.filters import instruction_rejection
from self_instruct.prompting.parsing import ParsedItem
from self_instruct.prompting.seeds import load_seeds


@pytest.fixture(scope="module")
def generated(generated_dataset):
    return generated_dataset


@pytest.mark.slow
def test_accepted_instructions_pass_every_filter(generated):
    config, folder, result = generated
    rows = datasets.load_dataset(str(folder), "instructions", split="train")
    assert len(rows) == config.num_instructions == result.funnel["instructions"]["kept"]
    for text in rows["instruction"]:
        assert instruction_rejection(ParsedItem(text)) is None, text


@pytest.mark.slow
def test_rouge_l_below_threshold_against_seeds_and_each_other(generated):
    config, folder, _ = generated
    texts = datasets.load_dataset(str(folder), "instructions", split="train")["instruction"]
    pool = [s.instruction for s in load_seeds(config.seeds)]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for text in texts:
        best = max(scorer.score(other, text)["rougeL"].fmeasure for other in pool)
        assert best <= config.rouge_threshold, text
        pool.append(text)


@pytest.mark.slow
def test_all_configurations_load_and_agree(generated):
    config, folder, result = generated
    loaded = {n: datasets.load_dataset(str(folder), n, split="train") for n in CONFIG_NAMES}
    assert {n: len(d) for n, d in loaded.items()} == result.num_rows
    # sft: every instance (the fixture leaves the seed tasks' own out), less any row repeating
    # one of its task
    rows = result.num_rows
    assert 0 < rows["sft"] <= rows["instances"]
    ids = set(loaded["instructions"]["id"])
    assert set(loaded["instances"]["instruction_id"]) <= ids
    card = (folder / "README.md").read_text()
    assert "SmolLM2-135M-Instruct" in card


def test_generate_help_documents_every_option_and_default():
    out = subprocess.run(
        [sys.executable, "-m", "self_instruct.cli", "generate", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flat = " ".join(out.split())
    for f in fields(PipelineConfig):
        default = f.default_factory() if f.default is MISSING else f.default
        assert f"--{f.name.replace('_', '-')}" in out
        assert f"(default: {default})" in flat, f.name
