"""The steps of the loop (paper section 2), as plain functions: build a request, read an answer.

Which in-context examples an instruction prompt shows, how an answer is split and checked by
the heuristics, what the classification and instance requests ask, and how the instance answer
is filtered and capped. None of them keeps state: the ROUGE-L pool, the run log and the counts
are the round committer's (generation/rounds.py), and when each request goes is the
scheduler's (generation/scheduler.py); both call down into these.

Every random choice comes from a generator seeded with the run seed and a position -- the
prompt's global index p, or the instruction's id -- never with what else is in flight, so a
resumed run repeats exactly the prompts an uninterrupted one would have sent.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from self_instruct.backends.base import Completion, SamplingParams
from self_instruct.config import PipelineConfig
from self_instruct.generation.jobs import (
    CLASSIFICATION_STEP,
    INSTANCES_STEP,
    INSTRUCTIONS_STEP,
    Candidate,
    Job,
    ScreenedAnswer,
)
from self_instruct.prompting.filters import cap_instances, filter_instances, instruction_rejection
from self_instruct.prompting.modes import CompletionMode
from self_instruct.runlog.records import InstanceFields, cut, rejection


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from the run seed and a position, stable across processes and platforms."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


@dataclass(frozen=True)
class StepInputs:
    """What every step reads, fixed for the run: the options, the prompting mode, the seeds."""

    config: PipelineConfig
    mode: CompletionMode
    seed_texts: list[str]  # the seed instructions prompts sample from: the pool's first texts
    instruction_params: SamplingParams  # an instruction prompt's, but its seed


def step_inputs(config: PipelineConfig, mode: CompletionMode, seed_texts: list[str]) -> StepInputs:
    params = SamplingParams(
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        stop=mode.instruction_stop,
        repetition_penalty=config.repetition_penalty,
        presence_penalty=config.presence_penalty,
        schema=mode.instruction_schema,
    )
    return StepInputs(config, mode, seed_texts, params)


def instruction_job(
    inputs: StepInputs, pool: Sequence[str], machine: int, prompt_index: int, round_: int
) -> Job:
    """Prompt `prompt_index` with the paper's mix: up to 2 machine instructions (from the first
    `machine` of the `pool` after its seeds: imported ones, then new ones), the rest seeds,
    shuffled."""
    cfg, seed_texts = inputs.config, inputs.seed_texts
    rng = random.Random(derive_seed(cfg.seed, "prompt", prompt_index))
    picked = rng.sample(range(machine), min(cfg.num_machine_instructions, machine))
    examples = [pool[len(seed_texts) + i] for i in picked]
    n_seeds = min(cfg.num_prompt_instructions - len(examples), len(seed_texts))
    examples += rng.sample(seed_texts, n_seeds)
    rng.shuffle(examples)
    seed = derive_seed(cfg.seed, "instructions", prompt_index)
    params = replace(inputs.instruction_params, seed=seed)
    prompt = inputs.mode.instruction_prompt(examples)
    return Job(INSTRUCTIONS_STEP, round_, prompt, params, (prompt_index, examples))


def read_instructions(inputs: StepInputs, job: Job, completion: Completion) -> ScreenedAnswer:
    """The answer's list, the parser's and the heuristics' rejections taken out."""
    items = inputs.mode.instructions(completion)
    if isinstance(items, str):  # the whole answer is rejected, for this reason
        return ScreenedAnswer([rejection(job.round, completion.text, items)], [])
    parsed = ScreenedAnswer([], [])
    for item in items:
        if reason := instruction_rejection(item):
            parsed.rejections.append(rejection(job.round, item.text, reason))
        else:
            parsed.texts.append(item.text)
    return parsed


def classification_job(inputs: StepInputs, candidate: Candidate) -> Job:
    """Asked of every instruction, in --classification-only runs too (as the paper does).
    Seeded by the candidate's place, known before the filter decides it (scheduler.py)."""
    mode = inputs.mode
    params = SamplingParams(
        max_new_tokens=mode.classification_max_tokens,
        stop=mode.classification_stop,
        seed=derive_seed(inputs.config.seed, "classify", *candidate.key),
        schema=mode.classification_schema,
    )
    prompt = mode.classification_prompt(candidate.text)
    return Job(CLASSIFICATION_STEP, candidate.round, prompt, params, candidate)


def instance_job(inputs: StepInputs, candidate: Candidate, answer: Completion) -> Job:
    cfg, mode = inputs.config, inputs.mode
    is_clf = mode.is_classification(answer)
    params = SamplingParams(
        max_new_tokens=cfg.instance_max_new_tokens,
        stop=mode.instance_stop(cfg.max_instances_per_task),
        repetition_penalty=cfg.repetition_penalty,
        presence_penalty=cfg.instance_presence_penalty,
        seed=derive_seed(cfg.seed, "instances", *candidate.key),
        schema=mode.instance_schema(is_clf, cfg.max_instances_per_task),
    )
    prompt = mode.instance_prompt(candidate.text, is_clf)
    return Job(INSTANCES_STEP, candidate.round, prompt, params, (candidate, is_clf))


def read_instances(
    inputs: StepInputs, record_id: str, job: Job, answer: Completion
) -> InstanceFields:
    """Parse and filter the instances, keep a seeded sample of at most the cap."""
    cfg, is_clf = inputs.config, job.subject[1]
    parsed, invalid = inputs.mode.instances(answer, is_clf, cfg.max_instances_per_task)
    kept, dropped = filter_instances(parsed)
    dropped += invalid
    rng = random.Random(derive_seed(cfg.seed, "instance-cap", record_id))
    kept, over = cap_instances(kept, cfg.max_instances_per_task, rng)
    dropped += over
    return {
        "is_classification": is_clf,
        "instances": [{"input": i.input, "output": i.output} for i in kept],
        "rejected_instances": [
            {"input": cut(i.input), "output": cut(i.output), "reason": reason}
            for i, reason in dropped
        ],
    }
