"""Each decision of the paper's released pipeline (issue 15, rules 1-9), pinned one by one.

Expected values come from reading yizhongw/self-instruct: `bootstrap_instructions.py`
(post_process_gpt3_response), `generate_instances.py`, `prepare_for_finetuning.py`
(parse_*_task, filter_*_instances, the 5-instance sample, the 50% field-name step).
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from self_instruct.backends.base import Backend, Completion, SamplingParams
from self_instruct.config import PipelineConfig
from self_instruct.export.rows import fine_tuning_input, seed_sft_rows, sft_rows
from self_instruct.generation.pipeline import Pipeline
from self_instruct.prompting.filters import cap_instances, filter_instances, instruction_rejection
from self_instruct.prompting.parsing import (
    ParsedInstance,
    parse_instances,
    parse_is_classification,
    split_instructions,
)
from self_instruct.prompting.prompts import load_templates
from self_instruct.prompting.seeds import SeedInstance, SeedTask

# --- rule 1: a list stopped by the token limit ------------------------------------------------


def test_length_stopped_list_loses_every_item():
    items = split_instructions(" First full task here\n10. Second full task here\n11. Cut o", True)
    assert len(items) == 3
    assert [instruction_rejection(i) for i in items] == ["truncated"] * 3


def test_alpaca_rule_is_an_option_that_keeps_all_but_the_last():
    text = " First full task here\n10. Second full task here\n11. Cut o"
    items = split_instructions(text, True, salvage_truncated=True)
    assert [i.truncated for i in items] == [False, False, True]
    assert [i.truncated for i in split_instructions(text, False)] == [False, False, False]


# --- rule 2: "Write a program" after str.capitalize() ----------------------------------------


@pytest.mark.parametrize(
    "text", ["Write A Program that adds numbers", "WRITE A PROGRAM THAT ADDS NUMBERS"]
)
@pytest.mark.parametrize("keep_case", [False, True])
def test_write_a_program_is_rejected_in_any_case(text, keep_case):
    (item,) = split_instructions(" " + text, False, keep_case=keep_case)
    assert instruction_rejection(item) == "write_a_program"


def test_stored_text_is_the_papers_capitalised_form_unless_case_is_kept():
    assert split_instructions(" write an SQL query", False)[0].text == "Write an sql query"
    kept = split_instructions(" write an SQL query", False, keep_case=True)[0]
    assert kept.text == "Write an SQL query"


def test_list_is_split_on_the_completion_itself():
    # The paper splits the text as it came: a leading "12. " is no item break.
    assert [i.text for i in split_instructions("12. Do this task well", False)] == [
        "12. do this task well"
    ]


# --- rule 3: neither an Example marker nor an Output field -----------------------------------


def test_input_first_text_without_markers_keeps_no_instance():
    assert parse_instances("Just an answer with no fields.", False, False) == []


# --- rule 4: output-first inputs as written; the field-name step at fine-tuning time -----------


def test_output_first_input_keeps_its_field_name():
    text = "Class label: Yes\nInput: Lovely day.\nClass label: No\nReview:\nAwful.\n\nReally.\n"
    assert parse_instances(text, True, False) == [
        ParsedInstance("Input: Lovely day.", "Yes"),
        ParsedInstance("Review:\nAwful.\n\nReally.", "No"),
    ]


class Draw(random.Random):
    """A generator whose first draw is fixed: the step's 50% coin, decided by the test."""

    def __init__(self, first: float) -> None:
        super().__init__(0)
        self.first = first

    def random(self) -> float:
        return self.first


@pytest.mark.parametrize(
    ("text", "stepped"),
    [
        ("Sentence: I loved it.\n\nReally.", "I loved it.\nReally."),
        ("Sentence: a\nSentence: b", "a\nSentence: b"),  # one distinct name: first colon
        ("Document: a\n\nClaim: b", "Document: a\nClaim: b"),  # two names: blank lines only
        ("Meet at 10:30, Time: now", "Meet at 10:30, Time: now"),  # "10" counts as a name
        ("no field at all", "no field at all"),
    ],
)
def test_field_name_step(text, stepped):
    assert fine_tuning_input(text, Draw(0.49)) == stepped
    assert fine_tuning_input(text, Draw(0.5)) == text


def test_field_name_step_reaches_half_of_the_sft_rows():
    rows = [
        {"id": f"r-{k}", "instruction": "Say it", "input": "Word: w", "output": "x"}
        for k in range(2000)
    ]
    sft = list(sft_rows(rows, seed=42, templates=load_templates()))
    stepped = sum("Word:" not in r["prompt"][0]["content"] for r in sft)
    assert 0.45 < stepped / len(sft) < 0.55
    again = list(sft_rows(rows, seed=42, templates=load_templates()))
    assert again == sft  # seeded


# --- rule 5: at most 5 instances per task, a seeded random sample -----------------------------


def test_instance_cap_samples_five_seeded():
    kept, _ = filter_instances([ParsedInstance(f"in {k}", f"out {k}") for k in range(7)])
    chosen, over = cap_instances(kept, 5, random.Random(7))
    assert len(chosen) == 5 and [r for _, r in over] == ["over_instance_cap"] * 2
    assert set(chosen) | {i for i, _ in over} == set(kept)
    assert chosen == [i for i in kept if i in chosen]  # generation order
    assert cap_instances(kept, 5, random.Random(7))[0] == chosen
    picks = {tuple(cap_instances(kept, 5, random.Random(s))[0]) for s in range(20)}
    assert len(picks) > 1  # a sample, not the first five
    assert cap_instances(kept[:5], 5, random.Random(7)) == (kept[:5], [])


# --- rule 6: the seed tasks' instances join the sft rows ---------------------------------------


def test_seed_instances_become_sft_rows():
    seeds = [
        SeedTask("seed_task_0", "a", "Add the numbers.", (SeedInstance("2, 3", "5"),), False),
        SeedTask("seed_task_1", "b", "Greet me.", (SeedInstance("", "Hi"),), False),
    ]
    rows = list(seed_sft_rows(seeds, 42, load_templates()))
    assert [r["instance_id"] for r in rows] == ["seed_task_0-0", "seed_task_1-0"]
    assert [r["completion"][0]["content"] for r in rows] == ["5", "Hi"]
    assert "Add the numbers." in rows[0]["prompt"][0]["content"]


# --- rule 8: the classifier's answer ----------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "yes"),
    [(" Yes", True), ("yes", True), ("YES\n", True), ("Yes.", False), ("yes, it is", False)],
)
def test_only_three_spellings_of_yes(answer, yes):
    assert parse_is_classification(answer) is yes


# --- rule 9: the Example pattern, the leading Input field, sampling parameters ----------------


def test_example_pattern_and_leading_input_field():
    text = (
        "Example 1.\nInput: 2, 3\nOutput: 5\n"
        "Example2\nInput 2 - List: [3, 1]\nOutput: [1, 3]\n"
        "Example 3\nNumbers: Input: 4\nOutput: 4!"
    )
    assert parse_instances(text, False, False) == [
        ParsedInstance("2, 3", "5"),
        ParsedInstance("Input 2 - List: [3, 1]", "[1, 3]"),  # only a leading "Input:" goes
        ParsedInstance("Numbers: Input: 4", "4!"),
    ]


class Recording(Backend):
    """Answers every prompt kind with a fixed text and keeps the sampling parameters."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.params: list[SamplingParams] = []

    def generate(self, prompts_, params):
        self.params.append(params)
        text = " Describe a calm lake at dawn\n10. List three uses of baking soda"
        if params.max_new_tokens == 3:
            text = " No"
        elif params.stop[0].startswith("Example"):
            text = "Output: Some answer here."
        return [Completion(text, "stop") for _ in prompts_]


def test_instance_requests_use_the_papers_penalty_and_stop(tmp_path):
    backend = Recording()
    config = PipelineConfig(num_instructions=1, batch_size=1)
    list(Pipeline(config, tmp_path / "run", backend=backend, progress=False))
    by_kind = {p.max_new_tokens: p for p in backend.params}
    assert by_kind[350].presence_penalty == 1.5 and by_kind[350].stop == ("Example 6", "Task:")
    assert by_kind[1024].presence_penalty == 2.0
    assert by_kind[3].stop == ("\n", "Task") and by_kind[3].temperature == 0


def test_a_row_repeating_one_of_its_task_is_left_out():
    one_layout = dataclasses.replace(
        load_templates(),
        sft_with_input=("{instruction}\n{input}",),
        sft_without_input=("{instruction}",),
    )
    rows = [
        {"id": f"r-{k}", "instruction": "Name a colour.", "input": "", "output": out}
        for k, out in enumerate(["Red", "Blue ", "Blue"])
    ]
    sft = list(sft_rows(rows, seed=1, templates=one_layout))
    assert [r["completion"][0]["content"] for r in sft] == ["Red", "Blue"]
