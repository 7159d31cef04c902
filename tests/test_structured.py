"""`--structured`: each step's answer is JSON under a schema, parsed, then filtered as the paper's.

Unit tests with hand-written answers (valid, invalid, ignored schema) and a scripted model; real
models and servers: the transformers backend decoding under the schema (slow), a real llama.cpp
server behind a recording proxy, and the TGI-protocol server checking `grammar` against TGI's
published OpenAPI schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from self_instruct.backends.base import Backend, Completion, SamplingParams
from self_instruct.config import PipelineConfig
from self_instruct.filters import instruction_rejection
from self_instruct.parsing import (
    Parsed,
    instances_from_json,
    instructions_from_json,
    is_classification_from_json,
)
from self_instruct.pipeline import Pipeline
from self_instruct.prompts import load_templates
from self_instruct.run import funnel_from_log
from self_instruct.runlog import read_log
from self_instruct.schemas import (
    CLASSIFICATION,
    INSTRUCTION_LIST,
    MAX_NEW_INSTRUCTIONS,
    instances_schema,
)

TEMPLATES = load_templates()
GOOD_TASKS = [
    "Describe how tides follow the phases of the moon",
    "Suggest three names for a shop that repairs old bicycles",
    "Decide whether the given sentence is written in the past or the present tense",
]


@pytest.mark.parametrize(
    "answer",
    [
        "Sure! Here are more tasks:\n10. Describe the water cycle for a child",  # plain text
        '{"tasks": ["Describe the water cycle for a child"]',  # unfinished JSON
        '["Describe the water cycle for a child"]',  # no object root
        '{"tasks": "Describe the water cycle for a child"}',  # not a list
        '{"tasks": []}',  # nothing proposed
        '{"tasks": [1, 2]}',  # not texts
        '{"tasks": ["Describe the water cycle"], "note": "extra"}',  # another field
        json.dumps({"tasks": ["Describe the water cycle"] * (MAX_NEW_INSTRUCTIONS + 1)}),
    ],
)
def test_instruction_answer_outside_the_schema_is_none(answer):
    assert INSTRUCTION_LIST.validate(answer) is None
    assert instructions_from_json(answer) is None


def test_instruction_answer_gives_candidates_in_the_papers_form():
    answer = json.dumps({"tasks": ["  write an SQL query\nfor the table ", "", *GOOD_TASKS[:1]]})
    items = instructions_from_json(answer)
    assert items == [
        Parsed("Write an sql query for the table", checked="Write an sql query for the table"),
        Parsed(GOOD_TASKS[0], checked=GOOD_TASKS[0]),
    ]
    [kept_case, _] = instructions_from_json(answer, keep_case=True)
    assert kept_case.text == "Write an SQL query for the table"


def test_classification_and_instance_answers():
    assert is_classification_from_json('{"answer": "Yes"}') is True
    assert is_classification_from_json('{"answer": "No"}') is False
    for invalid in (" Yes", '{"answer": "yes"}', '{"answer": "Maybe"}'):
        assert is_classification_from_json(invalid) is None
    pairs = json.dumps({"examples": [{"input": " 2 + 2 ", "output": "4"}]})
    [instance] = instances_from_json(pairs, instances_schema(False, 5), is_classification=False)
    assert (instance.input, instance.output) == ("2 + 2", "4")
    labelled = json.dumps({"examples": [{"label": "Spam", "input": "Win a cruise!"}]})
    [instance] = instances_from_json(labelled, instances_schema(True, 5), is_classification=True)
    assert (instance.input, instance.output) == ("Win a cruise!", "Spam")
    # The other kind's fields, or more examples than the cap, do not fit.
    assert instances_from_json(labelled, instances_schema(False, 5), False) is None
    too_many = json.dumps({"examples": [{"input": str(n), "output": "x"} for n in range(3)]})
    assert instances_from_json(too_many, instances_schema(False, 2), False) is None


def test_output_first_schema_asks_for_the_label_first():
    # A model writes the fields in the schema's order: the label, then an input of that class.
    assert list(
        instances_schema(True, 5).schema["properties"]["examples"]["items"]["properties"]
    ) == [
        "label",
        "input",
    ]


class JSONModel(Backend):
    """Answers each step's schema with valid JSON, except the answers `broken` picks: those
    come back as a server that ignores the schema would send them (the paper's text)."""

    name = "json-model"

    def __init__(self, broken=lambda prompt, params: False) -> None:
        super().__init__()
        self.broken = broken
        self.params: list[SamplingParams] = []
        self.answers: list[str] = []

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Completion]:
        self.params.append(params)
        out = []
        for prompt in prompts:
            text = self._text(prompt, params)
            self.answers.append(text)
            out.append(Completion(text, "stop", len(prompt.split()), len(text.split())))
        self.usage.add(out, 0.0)
        return out

    def _text(self, prompt: str, params: SamplingParams) -> str:
        if self.broken(prompt, params):
            return " 10. Describe a sunny day at the beach\n11. Explain why leaves fall"
        name = params.schema.name
        if name == "instruction_list":
            n = len(self.answers)  # new texts each time, so that ROUGE-L keeps them
            tasks = [
                f"{task} (variant {n} of idea {n * 7 + i})" for i, task in enumerate(GOOD_TASKS)
            ]
            return json.dumps({"tasks": [*tasks, "Too short", "Draw a map of the town"]})
        if name == "classification":
            return json.dumps(
                {"answer": "Yes" if "Decide" in prompt.rsplit("Task:", 1)[1] else "No"}
            )
        key = "label" if name == "classification_instances" else "output"
        return json.dumps({"examples": [{"input": "case one", key: "first"}]})


def run(tmp_path, backend, **options):
    options = {"num_instructions": 6, "batch_size": 2, "structured": True, **options}
    config = PipelineConfig(**options)
    pipeline = Pipeline(config, tmp_path / "run", backend=backend, progress=False)
    return pipeline, list(pipeline)


def test_structured_run_sends_schemas_and_filters_as_the_paper(tmp_path):
    model = JSONModel()
    pipeline, accepted = run(tmp_path, model)
    assert len(accepted) == 6
    assert all(instruction_rejection(Parsed(r["instruction"])) is None for r in accepted)
    names = {p.schema.name for p in model.params}
    assert names == {"instruction_list", "classification", "instances", "classification_instances"}
    assert all(p.stop == () for p in model.params)  # the JSON ends the answer, not "\n\n"
    assert {r["is_classification"] for r in accepted} == {True, False}
    assert all(r["instances"] for r in accepted)
    rejected = funnel_from_log(read_log(pipeline.log.dir), 6)["instructions"]["rejected"]
    assert rejected["too_short"] and rejected["blacklisted_word"]  # the paper's filters still apply
    assert "invalid_json" not in rejected


def test_answers_that_ignore_the_schema_are_rejected_as_invalid_json(tmp_path):
    def broken(prompt, params):  # every other instruction request, and every instance request
        return (
            params.schema.name != "classification"
            and "instances" in params.schema.name
            or (params.schema.name == "instruction_list" and hash(prompt) % 2 == 0)
        )

    model = JSONModel(broken)
    pipeline, accepted = run(tmp_path, model)
    records = read_log(pipeline.log.dir)
    invalid = [r for r in records if r.get("reason") == "invalid_json"]
    broken_answers = [a for a in model.answers if a.startswith(" 10.")]
    instruction_answers = [r for r in invalid if r["type"] == "rejected"]
    assert instruction_answers and all(r["text"].startswith(" 10.") for r in instruction_answers)
    kept = {r["instruction"] for r in accepted}
    assert not kept & {"Describe a sunny day at the beach", "Explain why leaves fall"}
    for record in accepted:  # no instance from an answer outside the schema
        assert record["instances"] == []
        assert [x["reason"] for x in record["rejected_instances"]] == ["invalid_json"]
    funnel = funnel_from_log(records, 6)
    assert funnel["instructions"]["rejected"]["invalid_json"] == len(instruction_answers)
    assert funnel["instances"]["rejected"]["invalid_json"] == len(accepted)
    assert len(broken_answers) == len(instruction_answers) + len(accepted)


def test_cut_off_answer_counts_as_truncated(tmp_path):
    class CutOff(JSONModel):
        def generate(self, prompts, params):
            return [
                Completion(c.text[:-3], "length", c.prompt_tokens, c.completion_tokens)
                if params.schema.name == "instruction_list" and n == 0
                else c
                for n, c in enumerate(super().generate(prompts, params))
            ]

    pipeline, _ = run(tmp_path, CutOff())
    rejected = funnel_from_log(read_log(pipeline.log.dir), 6)["instructions"]["rejected"]
    assert rejected["truncated"] >= 1 and "invalid_json" not in rejected


def test_structured_prompts_ask_for_json_and_keep_the_papers_examples():
    shown = ["Name a fruit that is red", "Sort the list of numbers"]
    prompt = TEMPLATES.instruction_prompt(shown, structured=True)
    assert prompt.startswith(TEMPLATES.instruction_header + "1. Name a fruit that is red\n")
    assert '{"tasks": [' in prompt and not prompt.endswith("3.")
    assert TEMPLATES.classification_prompt("Is it prime?", True).startswith(
        TEMPLATES.classification_prefix
    )
    assert '"label"' in TEMPLATES.instance_prompt("Label the email.", True, structured=True)
    assert '"output"' in TEMPLATES.instance_prompt("Add the numbers.", False, structured=True)


def test_structured_is_part_of_the_run_identity(tmp_path):
    from self_instruct.runlog import RunConfigMismatchError

    run(tmp_path, JSONModel(), num_instructions=2)
    config = PipelineConfig(num_instructions=2, batch_size=2, structured=False)
    with pytest.raises(RunConfigMismatchError, match="structured"):
        list(Pipeline(config, tmp_path / "run", backend=JSONModel(), progress=False))


def test_schemas_are_valid_json_schemas():
    jsonschema = pytest.importorskip("jsonschema")
    for schema in (INSTRUCTION_LIST, CLASSIFICATION, instances_schema(True, 5)):
        jsonschema.Draft202012Validator.check_schema(schema.schema)
