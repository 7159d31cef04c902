"""Growing a Hub dataset: v2 starts from v1's instructions (--resume-from) and holds both."""

from __future__ import annotations

import datasets
import pytest
from local_hub import LocalHub
from rouge_score import rouge_scorer

from self_instruct.cli import main

TOKEN = "token-alice"
REPO = "alice/grown"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with LocalHub(tmp_path / "hub", users={"alice": TOKEN}) as hub:
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield hub


def generate(folder, *extra):
    from self_instruct.testing.scripted_backend import ScriptedBackend

    main(
        [
            "generate",
            "--num_instructions",
            "5",
            "--batch_size",
            "4",
            "--output",
            str(folder),
            *extra,
        ],
        load_backend=lambda config: ScriptedBackend(),
    )


def rows(config, revision, cache):
    return datasets.load_dataset(
        REPO, config, revision=revision, split="train", cache_dir=str(cache)
    ).to_list()


def test_v2_grows_from_v1_and_v1_stays_exact(hub, tmp_path, capsys):
    generate(tmp_path / "one", "--push_to_hub", REPO)
    assert "@v1" in capsys.readouterr().out
    v1 = rows("instructions", "v1", tmp_path / "c1")
    assert len(v1) == 5

    generate(tmp_path / "two", "--seed", "7", "--resume_from", f"{REPO}@v1", "--push_to_hub", REPO)
    v2 = rows("instructions", "v2", tmp_path / "c2")
    assert len(v2) == 10 and v2[:5] == v1  # old rows first, unchanged, then 5 new ones
    assert len({r["id"] for r in v2}) == 10
    assert rows("instructions", "v1", tmp_path / "c3") == v1  # v1 still holds exactly v1

    v1_instances = rows("instances", "v1", tmp_path / "c4")
    v2_instances = rows("instances", "v2", tmp_path / "c5")
    assert v2_instances[: len(v1_instances)] == v1_instances

    # The new instructions were filtered against the old ones too.
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    old = [r["instruction"] for r in v1]
    for new in (r["instruction"] for r in v2[5:]):
        assert max(scorer.score(o, new)["rougeL"].fmeasure for o in old) <= 0.7


def test_unknown_version_to_grow_from_is_a_clear_error(hub, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        generate(tmp_path / "x", "--resume_from", f"{REPO}@v9")
    assert "--resume-from alice/grown@v9: cannot load" in str(exit_.value.code)
