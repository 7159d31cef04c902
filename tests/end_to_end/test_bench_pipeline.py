"""The simulated server of `scripts/bench_pipeline.py` answers each client in the format it
parses, and the benchmark runs end to end without the peers.

Every answer is read back with the parser that will read it in the benchmark: ours for our
prompts and the paper's (our parser follows the paper's rules), Alpaca's own `###` split and
field regex for Alpaca's prompt. Requests go over real HTTP to a real server on 127.0.0.1.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from anchors import ANCHORS, PAPER_TEMPLATES

from self_instruct.backends.base import SamplingParams
from self_instruct.backends.openai import OpenAIBackend
from self_instruct.backends.tgi import TGIBackend
from self_instruct.prompting.filters import filter_instances, instruction_rejection
from self_instruct.prompting.parsing import (
    parse_instances,
    parse_is_classification,
    split_instructions,
)
from self_instruct.prompting.prompts import load_templates
from self_instruct.testing.local_server import LocalServer
from self_instruct.testing.simulated_server import NEAR_ZERO, LatencyModel, SimulatedApp

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = load_templates()
INSTRUCTION = "Tell whether the sentence is written in the past tense."
ALPACA_PROMPT = ANCHORS / "stanford_alpaca" / "prompt.txt"


@pytest.fixture
def server():
    with LocalServer(SimulatedApp(NEAR_ZERO)) as running:
        yield running


def paper_prompts() -> dict[str, str]:
    """The paper's four prompts as its code joins them (anchors' texts, else ours: the same
    headers, which is all the server reads)."""
    texts = json.loads(PAPER_TEMPLATES.read_text()) if PAPER_TEMPLATES.exists() else None
    if texts is None:
        return our_prompts()
    seeds = "".join(f"{i}. Seed task number {i} here\n" for i in range(1, 9))
    return {
        "instructions": texts["instruction_header"] + seeds + "9.",
        "classification": texts["classification_prefix"] + f" {INSTRUCTION}\nIs it classification?",
        "output_first": texts["output_first_prefix"] + f" {INSTRUCTION}\n",
        "input_first": texts["input_first_prefix"] + f" {INSTRUCTION}\n",
    }


def our_prompts() -> dict[str, str]:
    return {
        "instructions": TEMPLATES.instruction_prompt(
            [f"Seed task number {i} here" for i in range(8)]
        ),
        "classification": TEMPLATES.classification_prompt(INSTRUCTION),
        "output_first": TEMPLATES.instance_prompt(INSTRUCTION, True),
        "input_first": TEMPLATES.instance_prompt(INSTRUCTION, False),
    }


def check_answers(texts: dict[str, str], finish: dict[str, str]) -> None:
    """Each kind's text parses, with our parser, into what its step needs."""
    instructions = split_instructions(texts["instructions"], finish["instructions"] == "length")
    kept = [i for i in instructions if instruction_rejection(i) is None]
    assert len(kept) == 7 == len(instructions)  # items 9 to 15: the stop cuts "16."
    assert texts["classification"] in (" Yes", " No")
    parse_is_classification(texts["classification"])
    for kind, is_classification in (("output_first", True), ("input_first", False)):
        instances = parse_instances(texts[kind], is_classification, False)
        good, rejected = filter_instances(instances)
        assert good and not rejected, (kind, texts[kind])


@pytest.mark.parametrize("backend", [OpenAIBackend, TGIBackend])
def test_our_backends_get_our_formats(server, backend):
    client = backend([server.url], model="simulated", max_concurrency=4)
    prompts = our_prompts()
    stops = {
        "instructions": TEMPLATES.instruction_stop,
        "classification": TEMPLATES.classification_stop,
        "output_first": TEMPLATES.instance_stop_for(5),
        "input_first": TEMPLATES.instance_stop_for(5),
    }
    texts, finish = {}, {}
    for kind, prompt in prompts.items():
        params = SamplingParams(max_new_tokens=1024, stop=stops[kind], seed=7)
        [completion] = client.generate([prompt], params)
        texts[kind], finish[kind] = completion.text, completion.finish_reason
    client.close()
    check_answers(texts, finish)


def test_legacy_client_prompt_lists_and_n(server):
    """The paper's code sends 5 prompts in one request to /v1/engines/davinci/completions and
    slices choices [j*n, (j+1)*n) per prompt: the answers must come back in that order."""
    prompts = paper_prompts()
    kinds = list(prompts)
    body = {
        "prompt": [prompts[k] for k in kinds],
        "max_tokens": 1024,
        "n": 2,
        "stop": ["\n\n", "\n16", "16.", "16 ."],
        "logprobs": 1,
    }
    answer = httpx2.post(f"{server.url}/v1/engines/davinci/completions", json=body).json()
    choices = answer["choices"]
    assert [c["index"] for c in choices] == list(range(2 * len(kinds)))
    assert answer["usage"]["total_tokens"] > answer["usage"]["completion_tokens"] > 0
    for copy in range(2):
        texts = {k: choices[2 * j + copy]["text"] for j, k in enumerate(kinds)}
        finish = {k: choices[2 * j + copy]["finish_reason"] for j, k in enumerate(kinds)}
        check_answers(texts, finish)
    stats = httpx2.get(f"{server.url}/stats").json()
    assert stats["generations"] == 2 * len(kinds) and stats["requests"] == 1


def test_alpaca_format_splits_on_hashes(server):
    """Alpaca's post-processing: "N. Instruction:" + text, split on ###, each block into 7."""
    head = (
        ALPACA_PROMPT.read_text()
        if ALPACA_PROMPT.exists()
        else ("You are asked to come up with a set of 20 diverse task instructions.\n")
    )
    seeds = "".join(
        f"###\n{i}. Instruction: Seed {i}\n{i}. Input:\n<noinput>\n{i}. Output:\nout {i}\n"
        for i in (1, 2, 3)
    )
    prompt = head + "\n" + seeds + "###\n4. Instruction:"
    body = {"model": "text-davinci-003", "prompt": [prompt], "max_tokens": 3072}
    body["stop"] = ["\n20", "20.", "20."]
    [choice] = httpx2.post(f"{server.url}/v1/completions", json=body).json()["choices"]
    blocks = re.split("###", "4. Instruction:" + choice["text"])
    parsed = []
    for idx, block in enumerate(blocks, 4):
        fields = re.split(rf"{idx}\.\s+(Instruction|Input|Output):", block)
        if len(fields) == 7:
            parsed.append(fields[2].strip())
    assert len(parsed) == 16  # 4 to 19; the stop cuts "20."
    assert all(len(p.split()) > 3 for p in parsed)


def test_latency_model_is_long_tailed_and_capped():
    model = LatencyModel()
    rng = random.Random(0)
    draws = sorted(model.tokens("instructions", rng, 10**6)[0] for _ in range(2000))
    median, p99 = draws[1000], draws[1980]
    assert 120 < median < 180 and p99 > 3 * median
    assert model.tokens("alpaca", random.Random(1), 10) == (10, True)
    assert model.tokens("classification", random.Random(1), 3) == (1, False)
    assert model.seconds(100) == pytest.approx(0.3 + 100 * 0.01)


def test_bench_runs_end_to_end_without_peers(tmp_path):
    """A tiny benchmark: both tables, and the note that the peers were skipped."""
    argv = [sys.executable, str(REPO / "scripts" / "bench_pipeline.py"), "--num-instructions", "5"]
    argv += ["--endpoints", "1", "--ceiling-sizes", "10", "--capacity", "4"]
    argv += [
        "--base-latency",
        "0.01",
        "--token-latency",
        "0",
        "--anchors",
        str(tmp_path / "absent"),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert f"peers skipped: no reference data at {tmp_path / 'absent'}" in out
    rows = [line for line in out.splitlines() if line.startswith("| ours")]
    assert len(rows) == 3, out  # defaults and tuned, then the near-zero row
    assert "## Near-zero latency" in out
    assert rows[0].split("|")[2].strip().isdigit() and int(rows[0].split("|")[2]) >= 5
