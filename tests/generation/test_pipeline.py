"""The bootstrap loop's bookkeeping, with the scripted backend (real models: test_end_to_end.py)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from rouge_score import rouge_scorer

from self_instruct.config import PipelineConfig
from self_instruct.generation.pipeline import Pipeline
from self_instruct.layout import LOG_FILE
from self_instruct.prompting.filters import instruction_rejection
from self_instruct.prompting.parsing import ParsedItem
from self_instruct.prompting.prompts import load_templates
from self_instruct.prompting.seeds import load_seeds
from self_instruct.run import funnel_from_log
from self_instruct.runlog.log import RunConfigMismatchError, read_log


def run(tmp_path, backend, name="run", **options):
    config = PipelineConfig(**{"num_instructions": 12, "batch_size": 4, **options})
    pipeline = Pipeline(config, tmp_path / name, backend=backend, progress=False)
    return pipeline, list(pipeline)


def test_accepted_instructions_pass_every_filter_and_rouge(tmp_path, scripted_backend):
    pipeline, accepted = run(tmp_path, scripted_backend)
    assert len(accepted) == 12
    texts = [r["instruction"] for r in accepted]
    assert all(instruction_rejection(ParsedItem(t)) is None for t in texts)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = [s.instruction for s in load_seeds()]
    for text in texts:  # against the seeds and every earlier accepted instruction
        assert max(scorer.score(p, text)["rougeL"].fmeasure for p in pool) <= 0.7
        pool.append(text)
    for record in accepted:
        assert record["max_rouge_l"] <= 0.7
        assert record["most_similar"][0]["rouge_l"] == pytest.approx(record["max_rouge_l"])


def test_funnel_adds_up_and_names_the_bait(tmp_path, scripted_backend):
    pipeline, accepted = run(tmp_path, scripted_backend)
    funnel = funnel_from_log(read_log(pipeline.log.dir), limit=12)
    for stage in funnel.values():
        assert stage["generated"] == stage["kept"] + sum(stage["rejected"].values())
    rejected = funnel["instructions"]["rejected"]
    # The scripted model always offers a 2-word item, a blacklisted one and a copy of a shown one.
    assert rejected["too_short"] >= 3 and rejected["blacklisted_word"] >= 3
    assert rejected["too_similar"] >= 3
    assert funnel["instances"]["kept"] == sum(len(r["instances"]) for r in accepted)


def test_prompts_mix_seeds_and_machine_instructions(tmp_path, scripted_backend):
    pipeline, accepted = run(tmp_path, scripted_backend, sample_lag=3)
    seeds = {s.instruction for s in pipeline.seeds}
    prompt_of = {r["instruction"]: r["prompt"] for r in accepted}
    later = [r for r in accepted if r["round"] > 0]
    for record in accepted:
        shown = record["prompt_instructions"]
        assert len(shown) == 8
        machine = [prompt_of[s] for s in shown if s not in seeds]
        assert len(machine) <= 2
        # Only from the pool as filtered through prompt p - 3 (--sample-lag).
        assert all(p < record["prompt"] - 3 for p in machine)
    assert any(any(s not in seeds for s in r["prompt_instructions"]) for r in later)
    first_prompt = scripted_backend.calls[0][0]
    header = load_templates().instruction_header
    assert first_prompt.startswith(header) and first_prompt.endswith("\n9.")


def test_classification_only_uses_classification_seeds_and_header(tmp_path, scripted_backend):
    pipeline, accepted = run(tmp_path, scripted_backend, classification_only=True)
    templates = load_templates()
    assert all(s.is_classification for s in pipeline.seeds)
    assert scripted_backend.calls[0][0].startswith(templates.classification_instruction_header)
    # The paper still asks the classifier about each new instruction (rule 7 of issue 15).
    asked = [p for call in scripted_backend.calls for p in call]
    logged = [r for r in read_log(pipeline.log.dir) if r["type"] == "instruction"]
    assert sum(p.startswith(templates.classification_prefix) for p in asked) == len(logged)
    assert {r["is_classification"] for r in accepted} == {True, False}


def test_interrupted_round_is_redone_identically(tmp_path, scripted_backend):
    from self_instruct.testing.scripted_backend import ScriptedBackend

    _, full = run(tmp_path, scripted_backend, name="full")
    _, partial = run(tmp_path, ScriptedBackend(), name="cut", num_instructions=5)
    log = tmp_path / "cut" / LOG_FILE
    with log.open("a") as f:  # a crash in the middle of the next round: a torn line
        f.write(json.dumps({"type": "rejected", "round": 99, "text": "x", "reason": "too_short"}))
        f.write('\n{"type": "instru')
    resumed_backend = ScriptedBackend()
    _, resumed = run(tmp_path, resumed_backend, name="cut")
    assert [r["id"] for r in resumed] == [r["id"] for r in full]
    assert [r["instruction"] for r in resumed] == [r["instruction"] for r in full]
    rounds = [r["round"] for r in read_log(tmp_path / "cut") if r["type"] == "round"]
    assert rounds == sorted(set(rounds))  # no round twice, none skipped
    assert len(resumed_backend.calls) < len(scripted_backend.calls)


def test_finished_run_replays_without_a_backend(tmp_path, scripted_backend):
    _, first = run(tmp_path, scripted_backend)
    config = PipelineConfig(num_instructions=12, batch_size=4, backend="tgi")  # no endpoint
    with pytest.raises(RunConfigMismatchError, match="backend: 'transformers' -> 'tgi'"):
        list(Pipeline(config, tmp_path / "run", progress=False))
    config = PipelineConfig(num_instructions=12, batch_size=4)
    replayed = Pipeline(config, tmp_path / "run", backend=None, progress=False)
    assert list(replayed) == first
    assert replayed._backend is None  # no model was loaded


def test_resume_with_other_options_says_what_differs(tmp_path, scripted_backend):
    run(tmp_path, scripted_backend, num_instructions=3)
    with pytest.raises(RunConfigMismatchError) as err:
        run(tmp_path, scripted_backend, num_instructions=3, temperature=1.0, seed=7)
    assert "temperature: 0.7 -> 1.0" in str(err.value) and "seed: 42 -> 7" in str(err.value)


def test_kept_instructions_are_described_against_the_provenance_pool(tmp_path, scripted_backend):
    """139 seeds and a pool of 40: each record's scores are over every 4th pool text."""
    pipeline, accepted = run(tmp_path, scripted_backend, provenance_pool=40)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = pipeline.index.texts
    for record in accepted:
        sample = pool[: pool.index(record["instruction"]) : 4]
        assert 20 < len(sample) <= 40
        scores = [scorer.score(record["instruction"], p)["rougeL"].fmeasure for p in sample]
        assert record["max_rouge_l"] == max(scores)
        assert record["mean_rouge_l"] == float(np.mean(scores))
        assert record["most_similar"][0] == {
            "instruction": sample[scores.index(max(scores))],
            "rouge_l": max(scores),
        }


def test_resume_with_another_provenance_pool_is_refused(tmp_path, scripted_backend):
    run(tmp_path, scripted_backend, num_instructions=3)
    with pytest.raises(RunConfigMismatchError, match="provenance_pool: 2000 -> 0"):
        run(tmp_path, scripted_backend, num_instructions=3, provenance_pool=0)


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    from self_instruct.testing.scripted_backend import ScriptedBackend

    def texts(name, seed):
        _, accepted = run(tmp_path, ScriptedBackend(), name=name, seed=seed, num_instructions=6)
        return [r["instruction"] for r in accepted]

    assert texts("a", 1) == texts("b", 1)
    assert texts("c", 1) != texts("d", 2)


def test_patience_stops_a_run_that_accepts_nothing(tmp_path):
    from self_instruct.backends.base import Backend, Completion

    class Parrot(Backend):
        def generate(self, prompts_, params):
            return [Completion(" Too short", "stop") for _ in prompts_]

    _, accepted = run(tmp_path, Parrot(), patience=3)
    assert accepted == []
    markers = [r for r in read_log(tmp_path / "run") if r["type"] == "round"]
    assert len(markers) == 3


def test_ids_are_unique_and_ordered(tmp_path, scripted_backend):
    _, accepted = run(tmp_path, scripted_backend)
    ids = [r["id"] for r in accepted]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(a != b for a, b in itertools.pairwise(ids))


def test_a_request_that_failed_for_good_keeps_its_round_out_of_the_log(tmp_path):
    from self_instruct.generation.jobs import RequestsFailedError
    from self_instruct.testing.scripted_backend import ScriptedBackend

    class Flaky(ScriptedBackend):
        """The 21st request fails for good, as a server backend reports it (None)."""

        def generate(self, prompts_, params):
            out = super().generate(prompts_, params)
            before = sum(map(len, self.calls[:-1]))
            return [None if before + i == 20 else c for i, c in enumerate(out)]

    with pytest.raises(RequestsFailedError, match=r"1 of \d+ requests of round \d+") as error:
        run(tmp_path, Flaky())
    assert error.value.round > 0
    markers = [r["round"] for r in read_log(tmp_path / "run") if r["type"] == "round"]
    assert markers == list(range(error.value.round))  # every earlier round, not the one that failed
