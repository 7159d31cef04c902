"""`--structured`: each step's answer is JSON under a schema, parsed, then filtered as the paper's.

Unit tests with hand-written answers (valid, invalid, ignored schema) and a scripted model; real
models and servers: the transformers backend decoding under the schema (slow), a real llama.cpp
server behind a recording proxy, and the TGI-protocol server checking `grammar` against TGI's
published OpenAPI schema.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence

import pytest
from anchors import TGI_OPENAPI, absent
from optional_extras import needs_extra
from test_backends_http import llama_cpp_server  # noqa: F401 (the real server, a fixture)
from tgi_schema import request_check

from self_instruct.backends.base import Backend, Completion, SamplingParams
from self_instruct.backends.openai import OpenAIBackend
from self_instruct.backends.tgi import TGIBackend, generate_parameters
from self_instruct.config import PipelineConfig
from self_instruct.generation.pipeline import Pipeline
from self_instruct.prompting.filters import instruction_rejection
from self_instruct.prompting.parsing import (
    ParsedItem,
    instances_from_json,
    instructions_from_json,
    is_classification_from_json,
)
from self_instruct.prompting.prompts import load_templates
from self_instruct.run import funnel_from_log
from self_instruct.runlog.log import read_log
from self_instruct.schemas import (
    CLASSIFICATION,
    INSTRUCTION_LIST,
    MAX_NEW_INSTRUCTIONS,
    instances_schema,
)
from self_instruct.testing.local_server import LocalServer, RecordingProxy, Reply
from self_instruct.testing.scripted_backend import ANGLES, TOPICS, VERBS
from self_instruct.testing.tgi_server import ModelTGIApp

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
        '{"tasks": [""]}',  # what a small model writes when left free
        '{"tasks": [", ", "./list()"]}',  # not sentences
        '{"tasks": ["write a poem"]}',  # no capital letter
        '{"tasks": ["Describe the water cycle"], "note": "extra"}',  # another field
        json.dumps({"tasks": ["Describe the water cycle"] * (MAX_NEW_INSTRUCTIONS + 1)}),
    ],
)
def test_instruction_answer_outside_the_schema_is_none(answer):
    assert INSTRUCTION_LIST.validate(answer) is None
    assert instructions_from_json(answer) is None


def test_instruction_answer_gives_candidates_in_the_papers_form():
    answer = json.dumps({"tasks": ["Write an SQL  query\tfor the table ", *GOOD_TASKS[:1]]})
    items = instructions_from_json(answer)
    assert items == [
        ParsedItem("Write an sql query for the table", checked="Write an sql query for the table"),
        ParsedItem(GOOD_TASKS[0], checked=GOOD_TASKS[0]),
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
        if name == "instruction_list":  # new texts each time (as the scripted model's), and bait
            rng = random.Random(len(self.answers))
            tasks = [
                f"{rng.choice(VERBS)} {rng.choice(TOPICS)} {rng.choice(ANGLES)}" for _ in range(3)
            ]
            tasks.append(f"Decide whether {rng.choice(TOPICS)} is a good topic, yes or no")
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
    assert all(instruction_rejection(ParsedItem(r["instruction"])) is None for r in accepted)
    names = {p.schema.name for p in model.params}
    assert names == {"instruction_list", "classification", "instances", "classification_instances"}
    assert all(p.stop == () for p in model.params)  # the JSON ends the answer, not "\n\n"
    assert {r["is_classification"] for r in accepted} == {True, False}
    assert all(r["instances"] for r in accepted)
    rejected = funnel_from_log(read_log(pipeline.log.dir), 6)["instructions"]["rejected"]
    assert rejected["too_short"] and rejected["blacklisted_word"]  # the paper's filters still apply
    assert "invalid_json" not in rejected


def test_answers_that_ignore_the_schema_are_rejected_as_invalid_json(tmp_path):
    lists = itertools.count()

    def broken(prompt, params):  # every other instruction request, and every instance request
        if params.schema.name == "instruction_list":
            return next(lists) % 2 == 0
        return "instances" in params.schema.name

    model = JSONModel(broken)
    pipeline, accepted = run(tmp_path, model)
    records = list(read_log(pipeline.log.dir))
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
    logged = [r for r in records if r["type"] == "instruction"]  # the round's surplus too
    assert len(broken_answers) == len(instruction_answers) + len(logged)


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
    # The examples are shown as the JSON the answer is to be, the paper's header above them.
    header, shown_json, query = prompt.split("\n", 2)
    assert header + "\n" == TEMPLATES.instruction_header
    assert json.loads(shown_json) == {"tasks": shown}
    assert query == TEMPLATES.structured_instruction_query
    assert TEMPLATES.classification_prompt("Is it prime?", True).startswith(
        TEMPLATES.classification_prefix
    )
    assert '"label"' in TEMPLATES.instance_prompt("Label the email.", True, structured=True)
    assert '"output"' in TEMPLATES.instance_prompt("Add the numbers.", False, structured=True)


def test_structured_is_part_of_the_run_identity(tmp_path):
    from self_instruct.runlog.log import RunConfigMismatchError

    run(tmp_path, JSONModel(), num_instructions=2)
    config = PipelineConfig(num_instructions=2, batch_size=2, structured=False)
    with pytest.raises(RunConfigMismatchError, match="structured"):
        list(Pipeline(config, tmp_path / "run", backend=JSONModel(), progress=False))


def test_schemas_are_valid_json_schemas():
    import jsonschema  # a dev requirement, as for tests/tgi_schema.py

    for schema in (INSTRUCTION_LIST, CLASSIFICATION, instances_schema(True, 5)):
        jsonschema.Draft202012Validator.check_schema(schema.schema)


# --- real models and servers ------------------------------------------------------------------


class Recording(Backend):
    """Passes every call to a real backend and keeps (schema, completion) of each answer."""

    def __init__(self, inner: Backend) -> None:
        super().__init__()
        self.inner, self.usage = inner, inner.usage
        self.answers: list[tuple[str, Completion]] = []

    def generate(self, prompts, params):
        completions = self.inner.generate(prompts, params)
        self.answers += [(params.schema, c) for c in completions]
        return completions

    def prompt_room(self, max_new_tokens):
        return self.inner.prompt_room(max_new_tokens)

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)


SHORT_RUN = {  # one list per round, short answers: a minute of CPU or so
    "num_instructions": 1,
    "batch_size": 1,
    "max_new_tokens": 96,
    "instance_max_new_tokens": 64,
    "patience": 3,
    "sample_lag": 1,  # over a server too: no rounds sent ahead, beyond the one instruction asked
}


def assert_kept_rows_pass_the_filters(accepted):
    for record in accepted:
        assert instruction_rejection(ParsedItem(record["instruction"])) is None
        assert record["max_rouge_l"] <= 0.7


@pytest.mark.slow
@needs_extra("structured")
def test_transformers_backend_answers_schema_valid_json(tmp_path, real_backend):
    model = Recording(real_backend)
    pipeline, accepted = run(tmp_path, model, **SHORT_RUN)
    assert accepted
    assert_kept_rows_pass_the_filters(accepted)
    kinds = {schema.name for schema, _ in model.answers}
    assert {"instruction_list", "classification"} <= kinds
    for schema, completion in model.answers:
        if completion.finish_reason == "stop":  # complete: it must fit, every time
            assert schema.validate(completion.text) is not None, completion.text
        else:  # cut by the token limit: a prefix of the JSON, never text before it
            assert completion.text.startswith("{")
    finished = {schema.name for schema, c in model.answers if c.finish_reason == "stop"}
    assert {"instruction_list", "classification"} <= finished
    funnel = funnel_from_log(read_log(pipeline.log.dir), 1)
    assert "invalid_json" not in funnel["instructions"]["rejected"]


def test_structured_run_against_llama_cpp(tmp_path, llama_cpp_server):  # noqa: F811
    """llama-cpp-python's server (0.3.36) reads no `response_format` on /v1/completions: its
    answers are free text, so this is the run against a server that ignores the schema."""
    proxy = RecordingProxy(llama_cpp_server)
    with LocalServer(proxy) as server:
        backend = OpenAIBackend([server.url], model="smollm2", max_concurrency=2)
        options = {**SHORT_RUN, "max_new_tokens": 64, "patience": 2}
        pipeline, accepted = run(tmp_path, backend, **options)
        backend.close()
    completions = [body for path, body in proxy.bodies if path == "/v1/completions"]
    assert completions
    for body in completions:  # every request carries its step's schema
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] in (
            "instruction_list",
            "classification",
            "instances",
            "classification_instances",
        )
        assert "stop" not in body
    first = completions[0]["response_format"]["json_schema"]
    assert first == {"name": "instruction_list", "schema": INSTRUCTION_LIST.schema}
    assert_kept_rows_pass_the_filters(accepted)
    records = list(read_log(pipeline.log.dir))
    answers = len(
        [
            b
            for b in completions
            if b["response_format"]["json_schema"]["name"] == "instruction_list"
        ]
    )
    rejected = funnel_from_log(records, 1)["instructions"]["rejected"]
    # Free text is never parsed as instructions: each answer that is not the JSON is one rejection.
    whole = [
        r
        for r in records
        if r["type"] == "rejected" and r["reason"] in ("invalid_json", "truncated")
    ]
    assert whole and len(whole) <= answers
    assert rejected.get("invalid_json", 0) + rejected.get("truncated", 0) >= len(whole)


def test_tgi_grammar_is_checked_against_tgis_schema():
    check = request_check()
    if check is None:
        pytest.skip(absent(TGI_OPENAPI))
    params = SamplingParams(max_new_tokens=16, schema=CLASSIFICATION)
    parameters = {k: v for k, v in generate_parameters(params).items() if v is not None}
    ours = {"inputs": "Task: x", "parameters": parameters}  # as the client sends it
    assert ours["parameters"]["grammar"] == {"type": "json", "value": CLASSIFICATION.schema}
    assert check(ours) is None
    for wrong in (
        {"type": "json_object", "value": {}},
        {"type": "json"},
        {"type": "regex", "value": 1},
    ):
        request = {"inputs": "Task: x", "parameters": {"max_new_tokens": 4, "grammar": wrong}}
        assert check(request) is not None, wrong


class RecordingTGI(ModelTGIApp):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[dict] = []

    def generate(self, request: dict) -> Reply:
        self.requests.append(request)
        return super().generate(request)


@pytest.mark.slow
@needs_extra("structured")
def test_structured_run_over_tgi_decodes_under_the_grammar(tmp_path, real_backend):
    """The TGI-protocol server checks each request against TGI's OpenAPI schema (a 422 would
    stop the run) and, as TGI does, decodes under the `grammar` it was sent."""
    app = RecordingTGI(real_backend, check_request=request_check())
    with LocalServer(app) as server:
        backend = TGIBackend([server.url], model="smollm2")
        pipeline, accepted = run(tmp_path, backend, **SHORT_RUN)
        backend.close()
    assert accepted
    assert_kept_rows_pass_the_filters(accepted)
    grammars = [r["parameters"]["grammar"] for r in app.requests]
    assert len(grammars) == len(app.requests) and all(g["type"] == "json" for g in grammars)
    sent = [g["value"] for g in grammars]
    assert INSTRUCTION_LIST.schema in sent and CLASSIFICATION.schema in sent
    rejected = funnel_from_log(read_log(pipeline.log.dir), 1)["instructions"]["rejected"]
    assert "invalid_json" not in rejected


def test_missing_extra_is_named_before_a_run(monkeypatch, tmp_path):
    import importlib.util

    from self_instruct.errors import ConfigError

    found = importlib.util.find_spec
    hidden = lambda name, *args: None if name == "llguidance" else found(name, *args)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", hidden)
    with pytest.raises(
        ConfigError, match=r"needs llguidance: run `pip install 'self-instruct\[structured\]'`"
    ):
        Pipeline(PipelineConfig(structured=True), tmp_path / "run", progress=False)
    # A server decodes under the schema itself: only the validation is needed here.
    config = PipelineConfig(structured=True, backend="tgi", endpoint=["http://127.0.0.1:1"])
    Pipeline(config, tmp_path / "run", backend=JSONModel(), progress=False)


def test_template_file_without_a_structured_section_gets_ours(tmp_path):
    import yaml

    from self_instruct.prompting.prompts import DEFAULT_TEMPLATES_PATH

    data = yaml.safe_load(DEFAULT_TEMPLATES_PATH.read_text())
    del data["structured"]
    data["instructions"]["header"] = "Write tasks:\n"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    templates = load_templates(str(path))
    assert templates.instruction_header == "Write tasks:\n"
    assert templates.structured_instruction_query == TEMPLATES.structured_instruction_query
    assert templates.instruction_prompt(["Name a colour"], structured=True).startswith(
        "Write tasks:"
    )
