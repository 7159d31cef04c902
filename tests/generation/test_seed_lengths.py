"""Seeds too long for the model's context are named before the first request (issue #13, item
10): one 10,000-word seed used to fail every round that sampled it with HTTP 400, on every resume.

Counted with the model's own tokenizer (transformers), a TGI server's `/tokenize` against its
`/info`, and an OpenAI-compatible server's `/tokenize` against `/v1/models` (vLLM's fields).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runs import run_cli
from tgi_schema import request_check

from self_instruct.backends.openai import OpenAIBackend
from self_instruct.backends.tgi import TGIBackend
from self_instruct.config import PipelineConfig
from self_instruct.errors import ConfigError
from self_instruct.generation.seed_lengths import check_seed_lengths
from self_instruct.prompting.seeds import SeedFileError, load_seeds
from self_instruct.testing.local_server import LocalServer, Reply
from self_instruct.testing.scripted_server import ScriptedApp
from self_instruct.testing.tgi_server import ModelTGIApp

LONG_SEED = "the_long_one"
TOO_LONG = rf"1 seed task\(s\) too long for the model: '{LONG_SEED}' \(\d+ tokens\)"


def seed_file(tmp_path: Path) -> Path:
    """Three ordinary seeds and one whose instruction is 10,000 words long."""
    instructions = {f"t{i}": f"Write a short poem about the number {i}." for i in range(3)}
    instructions[LONG_SEED] = "Summarize this text: " + " ".join(["word"] * 10_000)
    path = tmp_path / "seeds.jsonl"
    lines = [
        json.dumps(
            {
                "id": seed_id,
                "name": seed_id,
                "instruction": text,
                "instances": [{"input": "", "output": "Fine."}],
                "is_classification": False,
            }
        )
        for seed_id, text in instructions.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


class VLLMLike(ScriptedApp):
    """What vLLM says of its model and prompts: `max_model_len`, and `/tokenize` counts (one
    token per word here)."""

    def handle(self, method, path, body):
        if (method, path) == ("GET", "/v1/models"):
            return Reply(200, {"data": [{"id": "test-model", "max_model_len": 2048}]})
        if (method, path) == ("POST", "/tokenize"):
            return Reply(200, {"count": len(body["prompt"].split()), "max_model_len": 2048})
        return super().handle(method, path, body)


def test_an_openai_server_reports_its_context_and_counts(tmp_path):
    config = PipelineConfig(seeds=str(seed_file(tmp_path)), backend="openai")
    with LocalServer(VLLMLike()) as server:
        backend = OpenAIBackend([f"{server.url}/v1"], model="test-model")
        with pytest.raises(SeedFileError, match=TOO_LONG):
            check_seed_lengths(load_seeds(config.seeds), backend, config)
        check_seed_lengths(load_seeds("bundled"), backend, PipelineConfig())  # ours fit
        with pytest.raises(ConfigError, match="--max-new-tokens 4096 leaves no room"):
            check_seed_lengths(load_seeds("bundled"), backend, PipelineConfig(max_new_tokens=4096))
        backend.close()
    assert server.app.outcomes == {}  # nothing was generated


def test_a_server_that_does_not_say_is_not_checked(tmp_path):
    config = PipelineConfig(seeds=str(seed_file(tmp_path)), backend="tgi")
    with LocalServer(ScriptedApp()) as server:  # no /info, no /tokenize
        backend = TGIBackend([server.url], model="test-model")
        check_seed_lengths(load_seeds(config.seeds), backend, config)
        backend.close()


@pytest.mark.slow
def test_the_models_own_tokenizer_counts(tmp_path, real_backend):
    config = PipelineConfig(seeds=str(seed_file(tmp_path)))
    with pytest.raises(SeedFileError, match=TOO_LONG):
        check_seed_lengths(load_seeds(config.seeds), real_backend, config)
    check_seed_lengths(load_seeds("bundled"), real_backend, PipelineConfig())


class CountsGenerations(ModelTGIApp):
    generations = 0

    def generate(self, request):
        self.generations += 1
        return super().generate(request)


@pytest.mark.slow
def test_the_cli_names_the_seed_before_any_request_to_tgi(tmp_path, real_backend):
    """Through the real CLI and a TGI-protocol server over the real model (its tokenizer, its
    `max_input_tokens` of 2048): refused at once, nothing generated, no output folder."""
    out = tmp_path / "out"
    app = CountsGenerations(real_backend, check_request=request_check())
    with LocalServer(app) as server:
        args = ["generate", "--backend", "tgi", "--endpoint", server.url, "--output", str(out)]
        done = run_cli([*args, "--seeds", str(seed_file(tmp_path))], {"SI_TEST_REAL_MODEL": "1"})
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert f"'{LONG_SEED}'" in done.stderr and "Shorten or remove" in done.stderr
    assert app.generations == 0 and not out.exists()
