"""`--chat`: prompts written for chat models, answers read preamble-proof, the mode recorded.

Hand-written chat answers for the parsing rules and the not-a-task check; a scripted chatty
server on 127.0.0.1 for the run's control flow (what the requests carry, that talk never becomes
a row); the embedded SmolLM2 behind a real llama.cpp server for the real thing (slow).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import pytest
import yaml
from test_backends_http import llama_cpp_server  # noqa: F401 (a fixture)

from self_instruct.backends.base import ChatPrompt, Completion, Message, SamplingParams
from self_instruct.config import PipelineConfig
from self_instruct.export.provenance import provenance
from self_instruct.generation.pipeline import Pipeline, run_identity
from self_instruct.prompting.filters import instruction_rejection, not_a_task
from self_instruct.prompting.modes import ChatMode, CompletionMode, prompting_mode
from self_instruct.prompting.parsing import (
    ParsedItem,
    chat_is_classification,
    chat_list_items,
    chat_split_instructions,
    parse_instances,
    split_instructions,
)
from self_instruct.prompting.prompts import DEFAULT_TEMPLATES_PATH, TemplateError, load_templates
from self_instruct.prompting.seeds import load_seeds
from self_instruct.testing.local_server import LocalServer, RecordingProxy, Reply
from self_instruct.testing.scripted_server import ScriptedApp

TEMPLATES = load_templates()
TEMPLATES_YAML = yaml.safe_load(DEFAULT_TEMPLATES_PATH.read_text(encoding="utf-8"))

# --- preamble-proof parsing, on answers written the way chat models write them ---------------

PREAMBLE_AND_OUTRO = """Sure! Here are more tasks:

9. Write a haiku about the first snow of winter.
10. Summarize the news article in two sentences.

I hope these help! Let me know if you need more."""

MARKDOWN = """Of course. Here you go:

**9.** Translate the menu into Spanish for a tourist.
**10.** **Packing list:** Suggest what to pack for a week of hiking.
Task 11: Sort the list of cities by population.
12) Explain why leaves change colour
in autumn, for a child.
"""

NUMBERED_WITH_ANSWERS = """1. Decide whether the statement is a fact or an opinion:
   - "Paris is the capital of France" - Fact
2. Name three animals that live in the desert.
- Camel
- Fennec fox
"""

BULLETS_ONLY = """Here are some new tasks:
- Write a limerick about a forgetful cat.
* Give three tips for a first job interview.
"""


def test_preamble_and_trailing_commentary_are_never_instructions():
    assert chat_list_items(PREAMBLE_AND_OUTRO) == [
        "Write a haiku about the first snow of winter.",
        "Summarize the news article in two sentences.",
    ]
    # the paper's parser, for contrast: the preamble is an item, and passes every filter
    paper = [item.text for item in split_instructions(PREAMBLE_AND_OUTRO, False)]
    assert paper[0].startswith("Sure! here are more tasks")


def test_markdown_numbers_task_labels_and_wrapped_lines():
    assert chat_list_items(MARKDOWN) == [
        "Translate the menu into Spanish for a tourist.",
        "Suggest what to pack for a week of hiking.",
        "Sort the list of cities by population.",
        "Explain why leaves change colour in autumn, for a child.",
    ]


def test_bullets_under_a_numbered_task_are_its_answer_not_tasks():
    assert chat_list_items(NUMBERED_WITH_ANSWERS) == [
        "Decide whether the statement is a fact or an opinion:",
        "Name three animals that live in the desert.",
    ]


def test_a_bullet_list_is_a_list_when_nothing_is_numbered():
    assert chat_list_items(BULLETS_ONLY) == [
        "Write a limerick about a forgetful cat.",
        "Give three tips for a first job interview.",
    ]


def test_an_answer_without_a_list_gives_nothing():
    assert chat_list_items("I'm sorry, I cannot help with that request.") == []


def test_chat_items_follow_the_papers_case_and_truncation_rules():
    items = chat_split_instructions(MARKDOWN, hit_length_limit=True)
    assert all(item.truncated for item in items)  # the paper drops a length-stopped list
    salvaged = chat_split_instructions(MARKDOWN, True, salvage_truncated=True)
    assert [item.truncated for item in salvaged] == [False, False, False, True]
    assert items[0].text == "Translate the menu into spanish for a tourist."  # capitalize()
    kept = chat_split_instructions(MARKDOWN, False, keep_case=True)
    assert kept[0].text == "Translate the menu into Spanish for a tourist."


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("Yes", True), ("Yes, it is a classification task.", True), ("**Yes**", True)]
    + [("yes.", True), ("No", False), ("No, it is not.", False), ("", False)]
    + [("Sure! Yes", False), ("Yesterday", False)],
)
def test_chat_classification_answer_is_its_first_word(answer, expected):
    assert chat_is_classification(answer) is expected


def test_chat_instances_lose_the_preamble_and_the_repeated_task():
    answer = (
        "Sure! Here are some examples:\n"
        "Task: Reverse the words.\n"
        "Example 1\nInput: red blue\nOutput: blue red\n"
        "Example 2\nInput: a b c\nOutput: c b a"
    )
    chat = parse_instances(answer, is_classification=False, hit_length_limit=False, chat=True)
    assert [(i.input, i.output) for i in chat] == [("red blue", "blue red"), ("a b c", "c b a")]
    paper = parse_instances(answer, is_classification=False, hit_length_limit=False)
    assert paper[0].output.startswith("Sure!")  # the paper's rule keeps the talk as an instance


# --- the not-a-task check --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Sure! Here are more tasks:", "preamble"),
        ("Certainly, I can come up with some tasks for you.", "preamble"),
        ("Below are some new tasks for a language model:", "preamble"),
        ("Yes, the email is spam and should be deleted.", "answer"),
        ("No, the statement is an opinion.", "answer"),
        ("The answer is 42 because six times seven is 42.", "answer"),
        ("Output: The capital of France is Paris.", "answer"),
        ("Write a haiku about rain. 10. Sort the list of numbers.", "two_tasks"),
        ("Write a poem about the sea. Task 2: Translate it into French.", "two_tasks"),
        ("Give a synonym for happy. - Explain what an adverb is.", "two_tasks"),
        ("Write a haiku about the first snow of winter.", None),
        ("Translate the following sentence into French:", None),
        ("Is the following email spam? Answer yes or no.", None),
        ("Sort the numbers 3, 1, 2 in ascending order.", None),
        ("No more than ten words: describe your morning.", None),
        ("Explain what the answer to a riddle should look like.", None),
        ("Compare the years 1990 and 2000 - which had more rain?", None),
    ],
)
def test_not_a_task_on_hand_written_cases(text, reason):
    assert not_a_task(text) == reason


# --- prompts and templates ---------------------------------------------------------------------


def test_chat_prompts_are_messages_with_the_examples_and_the_format():
    prompt = TEMPLATES.chat_instruction_prompt(["Write a poem.", "Sort numbers:"])
    system, user = prompt.messages
    assert (system.role, user.role) == ("system", "user")
    assert "1. Write a poem.\n2. Sort numbers\n" in user.content
    assert "numbered from 3" in user.content
    clf = TEMPLATES.chat_classification_prompt("Is 7 prime?")
    assert TEMPLATES.classification_prompt("Is 7 prime?") in clf.messages[1].content
    inst = TEMPLATES.chat_instance_prompt("Is 7 prime?", True)
    assert TEMPLATES.instance_prompt("Is 7 prime?", True) in inst.messages[1].content


def test_completion_mode_sends_the_papers_prompts_unchanged():
    config = PipelineConfig()
    mode = prompting_mode(config, TEMPLATES)
    assert type(mode) is CompletionMode and config.prompting_mode == "completion"
    examples = ["Write a poem.", "Sort numbers."]
    assert mode.instruction_prompt(examples) == TEMPLATES.instruction_prompt(examples)
    assert mode.instance_stop(5) == TEMPLATES.instance_stop_for(5)
    assert isinstance(prompting_mode(PipelineConfig(chat=True), TEMPLATES), ChatMode)


def test_a_template_file_without_a_chat_section_gets_ours(tmp_path):
    data = {name: block for name, block in TEMPLATES_YAML.items() if name != "chat"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    assert load_templates(str(path)).chat_instructions == TEMPLATES.chat_instructions
    data["chat"] = {**TEMPLATES_YAML["chat"], "instructions": "Write more tasks."}
    path.write_text(json.dumps(data))
    with pytest.raises(TemplateError, match=r"'chat.instructions' must hold \{tasks\}"):
        load_templates(str(path))


# --- the mode is recorded ----------------------------------------------------------------------


def test_the_mode_is_in_the_run_identity_and_the_provenance():
    seeds = load_seeds("bundled")
    for config, mode in ((PipelineConfig(), "completion"), (PipelineConfig(chat=True), "chat")):
        assert run_identity(config, seeds, TEMPLATES)["prompting_mode"] == mode
        facts = provenance(config, "self-instruct generate", {})
        assert facts["prompting_mode"] == mode and facts["prompting_mode_description"]


# --- a run against a scripted chat model: control flow and what the requests carry -------------


def chatty(user: str) -> str:
    """Answers as chat models do: talk around the answer, lists in markdown."""
    if user.startswith("Come up with a series of"):
        rng = random.Random(user)  # other examples, other tasks
        first, second = (" ".join(rng.sample(WORDS, 4)) for _ in range(2))
        return (
            "Sure! Here are more tasks:\n\n"
            f"**9.** Describe {first} to a curious ten-year-old.\n"
            f"10. Suggest ways to reuse {second} at home.\n\n"
            "I hope these help!"
        )
    if "Is it classification?" in user:
        return "No, it is not."
    return "Sure! Here are some examples:\nExample 1\nInput: a jar\nOutput: a vase"


WORDS = [
    "jar",
    "kite",
    "river",
    "violin",
    "cactus",
    "lantern",
    "glacier",
    "pepper",
    "comet",
    "ferry",
    "quilt",
    "anvil",
    "orchid",
    "tunnel",
    "pixel",
    "walrus",
    "banjo",
    "meadow",
    "sphinx",
    "candle",
    "harbor",
    "tundra",
    "yeast",
    "zebra",
]


@dataclass
class RecordingApp(ScriptedApp):
    """Keeps every request body it is sent."""

    bodies: list[tuple[str, dict]] = field(default_factory=list)

    def handle(self, method: str, path: str, body) -> Reply:
        if method == "POST":
            self.bodies.append((path, body))
        return super().handle(method, path, body)


@pytest.mark.parametrize("backend", ["openai", "tgi"])
def test_a_chat_run_sends_messages_and_keeps_only_list_items(tmp_path, backend):
    app = RecordingApp(reply=chatty)
    with LocalServer(app) as server:
        config = PipelineConfig(
            backend=backend, endpoint=[server.url], chat=True, num_instructions=4, batch_size=2
        )
        kept = list(Pipeline(config, tmp_path / "run", progress=False))
    assert len(kept) == 4
    for record in kept:
        assert not_a_task(record["instruction"]) is None
        assert record["instances"] == [{"input": "a jar", "output": "a vase"}]
    paths = {path for path, _ in app.bodies}
    assert paths == {"/v1/chat/completions"}
    for _, body in app.bodies:
        roles = [message["role"] for message in body["messages"]]
        assert roles == ["system", "user"]
        assert body["messages"][0]["content"] == TEMPLATES.chat_system


def test_transformers_backend_renders_a_chat_through_the_models_template():
    class Tokenizer:
        chat_template = "{{ messages }}"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert (tokenize, add_generation_prompt) == (False, True)
            return "|".join(f"<{m['role']}>{m['content']}" for m in messages) + "|<assistant>"

    from self_instruct.backends.transformers import TransformersBackend

    backend = TransformersBackend.__new__(TransformersBackend)
    backend.tokenizer = Tokenizer()
    chat = ChatPrompt((Message("system", "S"), Message("user", "U")))
    assert backend.render(chat) == "<system>S|<user>U|<assistant>"
    assert backend.render("raw text") == "raw text"
    Tokenizer.chat_template = None
    with pytest.raises(ValueError, match="--chat needs a model with a chat template"):
        backend.render(chat)


@pytest.mark.slow
def test_transformers_backend_chat_with_the_embedded_models_own_template():
    from self_instruct.backends.transformers import TransformersBackend

    backend = TransformersBackend(device="cpu", dtype="float32")
    prompt = TEMPLATES.chat_classification_prompt("Is the number 7 prime?")
    rendered = backend.render(prompt)
    assert rendered.startswith(f"<|im_start|>system\n{TEMPLATES.chat_system}<|im_end|>")
    assert rendered.endswith("Yes or No only.<|im_end|>\n<|im_start|>assistant\n")
    [completion] = backend.generate([prompt], SamplingParams(max_new_tokens=3))
    assert completion.text.strip() and completion.prompt_tokens > 500  # the 31 shots in it
    tokens = backend.tokenizer(rendered, add_special_tokens=False).input_ids
    assert completion.prompt_tokens == len(tokens)  # no second BOS on top of the template's


# --- the real thing: the embedded SmolLM2 behind llama.cpp's server (slow) ---------------------


@pytest.mark.slow
def test_chat_run_against_llama_cpp_keeps_only_tasks(tmp_path, llama_cpp_server):  # noqa: F811
    proxy = RecordingProxy(llama_cpp_server)
    with LocalServer(proxy) as server:
        config = PipelineConfig(
            backend="openai",
            endpoint=[server.url],
            model="smollm2",
            chat=True,
            num_instructions=2,
            batch_size=2,
            max_new_tokens=160,
            instance_max_new_tokens=120,
            patience=4,
            max_concurrency=2,
        )
        kept = list(Pipeline(config, tmp_path / "run", progress=False))
    assert kept, "four rounds of the embedded model kept nothing"
    for record in kept:
        assert instruction_rejection(ParsedItem(record["instruction"])) is None
        assert not_a_task(record["instruction"]) is None, record["instruction"]
    chats = [body for path, body in proxy.bodies if path == "/v1/chat/completions"]
    assert chats and len(chats) == len(proxy.bodies)  # every step went as messages
    for body in chats:
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert any("Come up with a series of" in b["messages"][1]["content"] for b in chats)


def test_chat_completion_is_parsed_from_the_message_not_the_prompt():
    mode = ChatMode(TEMPLATES)
    completion = Completion(PREAMBLE_AND_OUTRO, "stop")
    assert [i.text for i in mode.instructions(completion)][0].startswith("Write a haiku")


def test_seed_lengths_are_counted_in_the_prompts_the_mode_sends():
    from self_instruct.generation.seed_lengths import _prompts

    seeds = load_seeds("bundled")[:2]
    header, first, _ = _prompts(seeds, PipelineConfig(chat=True))
    assert header.startswith(TEMPLATES.chat_system) and "numbered from 1" in header
    assert f"1. {seeds[0].instruction.strip()}" in first and "numbered from 2" in first
    assert _prompts(seeds, PipelineConfig())[0] == TEMPLATES.instruction_prompt([])
