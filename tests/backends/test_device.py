"""Where and how the transformers backend runs a model: --device, --dtype, --device-map,
--model-revision, and the batch size that suits the device.

No GPU here: a tiny real Llama checkpoint (random weights, a word-level tokenizer) is loaded on
the CPU in bfloat16, through `accelerate`'s device map, and from a revision on the local test Hub;
the calls to `from_pretrained` and `generate` are recorded on their way to the real ones.
"""

from __future__ import annotations

import pytest
import torch
from local_hub import LocalHub

from self_instruct.backends import load_backend, resolve_defaults
from self_instruct.backends import transformers as tf_backend
from self_instruct.backends.base import SamplingParams
from self_instruct.config import PipelineConfig
from self_instruct.errors import ConfigError

WORDS = ["<pad>", "<eos>", "<unk>", "list", "one", "two", "three", "task", "write", "a", "poem"]


def save_tiny_model(folder, seed: int = 0) -> None:
    """A 2-layer Llama with 11-word vocabulary: loads and generates in milliseconds."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(WORDS)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama")
    save_tiny_model(folder)
    return str(folder)


@pytest.fixture
def calls(monkeypatch):
    """Record the keyword arguments of every from_pretrained and generate call (then run them)."""
    from transformers import AutoModelForCausalLM, GenerationMixin

    recorded: dict[str, list[dict]] = {"from_pretrained": [], "generate": []}
    real_load, real_generate = AutoModelForCausalLM.from_pretrained, GenerationMixin.generate

    def from_pretrained(path, *args, **kwargs):
        recorded["from_pretrained"].append(kwargs)
        return real_load(path, *args, **kwargs)

    def generate(self, *args, **kwargs):
        recorded["generate"].append({"model_device": self.device, **kwargs})
        return real_generate(self, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    monkeypatch.setattr(GenerationMixin, "generate", generate)
    tf_backend.load_model_and_tokenizer.cache_clear()
    yield recorded
    tf_backend.load_model_and_tokenizer.cache_clear()


def test_device_and_dtype_reach_from_pretrained_and_generate(tiny_model, calls):
    config = PipelineConfig(model=tiny_model, device="cpu", dtype="bfloat16", batch_size=2)
    backend = load_backend(config)
    assert backend.lm.dtype == torch.bfloat16 and backend.lm.device.type == "cpu"
    (load,) = calls["from_pretrained"]
    assert load["dtype"] == "bfloat16" and load["device_map"] == "cpu"
    out = backend.generate(["write a poem", "list one two three"], SamplingParams(4))
    assert len(out) == 2 and all(c.completion_tokens > 0 for c in out)
    (call,) = calls["generate"]
    assert call["input_ids"].device == call["model_device"]


def test_device_map_places_the_model_with_accelerate(tiny_model, calls):
    backend = load_backend(PipelineConfig(model=tiny_model, device_map="auto", dtype="float32"))
    assert calls["from_pretrained"][0]["device_map"] == "auto"
    assert backend.lm.device.type == "cpu"  # what "auto" finds on a machine without a GPU
    assert backend.generate(["write a poem"], SamplingParams(3))[0].completion_tokens > 0


def test_auto_resolves_to_the_best_device_and_its_dtype_and_batch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    cpu = resolve_defaults(PipelineConfig())
    assert (cpu.device, cpu.dtype, cpu.batch_size) == ("cpu", "float32", 8)
    gpu = resolve_defaults(PipelineConfig(device="cuda"))
    assert (gpu.device, gpu.dtype, gpu.batch_size) == ("cuda", "bfloat16", 32)
    assert resolve_defaults(PipelineConfig(device="cuda", batch_size=4)).batch_size == 4
    server = resolve_defaults(PipelineConfig(backend="tgi", endpoint=["http://127.0.0.1:1"]))
    assert (server.device, server.batch_size) == ("auto", 8)  # no torch device for a server


def test_unknown_dtype_is_refused_naming_the_option():
    with pytest.raises(ConfigError, match="--dtype .* got float8"):
        PipelineConfig(dtype="float8")


def test_model_revision_loads_that_commit_and_is_recorded(tmp_path, calls):
    from huggingface_hub import HfApi

    with LocalHub(tmp_path / "hub", users={"alice": "token-a"}):
        api = HfApi(token="token-a")
        api.create_repo("alice/tiny")
        commits = []
        for seed in (0, 1):
            save_tiny_model(tmp_path / f"v{seed}", seed=seed)
            commits.append(
                api.upload_folder(repo_id="alice/tiny", folder_path=tmp_path / f"v{seed}")
            )
        first = commits[0].oid
        backend = load_backend(
            PipelineConfig(model="alice/tiny", model_revision=first, device="cpu")
        )
        assert calls["from_pretrained"][0]["revision"] == first
        assert tf_backend.resolved_commit("alice/tiny", first) == first
        assert tf_backend.resolved_commit("alice/tiny") is None  # main was never downloaded
        loaded = backend.lm.get_input_embeddings().weight
        first_weights = tf_backend.load_model_and_tokenizer(str(tmp_path / "v0"))[0]
        assert torch.equal(loaded, first_weights.get_input_embeddings().weight)
