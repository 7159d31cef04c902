"""Prompt templates as data: our file's demonstrations are our own and in the paper's numbers, the
paper's own texts convert to our format and give byte-identical prompts, bad files fail clearly."""

from __future__ import annotations

import ast
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from anchors import PAPER_CODE, PAPER_TEMPLATES, needs
from rouge_score import rouge_scorer
from script_modules import load_script

from self_instruct.config import PipelineConfig
from self_instruct.export.provenance import provenance
from self_instruct.generation.pipeline import run_identity
from self_instruct.prompting.prompts import DEFAULT_TEMPLATES_PATH, TemplateError, load_templates
from self_instruct.prompting.seeds import load_seeds

needs_paper = needs(PAPER_TEMPLATES, PAPER_CODE)
EXAMPLES = [
    "Give three tips for staying healthy.",
    "  Sort   the list\nascendingly:  ",
    "Translate {this} into French: ",
    "Écris un poème sur la mer.",
    "Is 17 a prime number?",
    "Summarize the article.",
    "Name a famous painter",
    "Which  word is the odd one out?\t",
]


def demonstrations(prefix: str) -> list[str]:
    """The demonstration blocks of a few-shot prefix (header first, the open "Task:" last)."""
    return [block.strip() for block in prefix.split("\n\nTask:")[1:-1]]


def task_line(block: str) -> str:
    return block.split("\n", 1)[0].strip()


# --- our default file ------------------------------------------------------------------------


def test_default_file_has_the_papers_numbers_of_demonstrations():
    ours = load_templates()
    assert len(demonstrations(ours.classification_prefix)) == 31
    assert len(demonstrations(ours.input_first_prefix)) == 11
    assert len(demonstrations(ours.output_first_prefix)) == 16
    inputs = demonstrations(ours.input_first_prefix)
    assert sum("\nExample 1\n" not in "\n" + b for b in inputs) >= 3  # tasks without input
    fields = {re.match(r"(\w[\w ]*):", b.split("\n")[2]) for b in inputs if "\nExample 1\n" in b}
    assert len({m.group(1) for m in fields if m} - {"Input"}) >= 6  # named input fields
    assert any("def " in b for b in inputs) and any("{" in b for b in inputs)  # code
    labels_only = [b for b in demonstrations(ours.output_first_prefix) if b.count("\n") == 1]
    assert labels_only  # a classification task without input


def test_every_shipped_prompt_fills_in_the_instruction():
    ours = load_templates()
    assert ours.classification_prompt(" Do X ").endswith("Task: Do X\nIs it classification?")
    assert ours.instance_prompt("Do X", True).endswith("\n\nTask: Do X\n")
    assert ours.instance_prompt("Do X", False).startswith("Come up with examples")


@needs_paper
def test_our_demonstrations_are_our_own():
    """No demonstration of ours is a near-copy of one of the paper's (ROUGE-L <= 0.7), whether
    compared whole or by its task line (classification shots: the task, not the shared answer
    line)."""
    ours, paper = load_templates(), json.loads(PAPER_TEMPLATES.read_text(encoding="utf-8"))
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = [
        (ours.classification_prefix, paper["classification_prefix"]),
        (ours.input_first_prefix, paper["input_first_prefix"]),
        (ours.output_first_prefix, paper["output_first_prefix"]),
    ]
    checked = 0
    for mine, theirs in pairs:
        for a, b in itertools.product(demonstrations(mine), demonstrations(theirs)):
            whole = [] if mine is ours.classification_prefix else [(a, b)]
            for x, y in (*whole, (task_line(a), task_line(b))):
                assert scorer.score(y, x)["rougeL"].fmeasure <= 0.7, (x, y)
            checked += 1
    assert checked == 31 * 31 + 11 * 11 + 16 * 16


# --- the paper's texts in our format ---------------------------------------------------------


def paper_code_expression(file: str, target: str) -> list[ast.expr]:
    """The right-hand sides assigned to `target` in one of the paper's scripts."""
    tree = ast.parse((PAPER_CODE / file).read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == target for t in node.targets)
    ]


def paper_template_strings() -> dict[str, str]:
    names: dict[str, str] = {}
    for file in ("clf_task_template.py", "instance_gen_template.py"):
        exec((PAPER_CODE / "templates" / file).read_text(encoding="utf-8"), names)
    return names


def paper_prompts(instruction: str, examples: list[str]) -> dict[str, str]:
    """Each prompt kind as the paper's own code lines build it, run here on one instruction."""
    tree = ast.parse((PAPER_CODE / "bootstrap_instructions.py").read_text(encoding="utf-8"))
    encode = next(n for n in tree.body if getattr(n, "name", "") == "encode_prompt")
    scope: dict = {"re": re}
    exec(compile(ast.Module([encode], []), "bootstrap_instructions.py", "exec"), scope)
    templates = paper_template_strings()
    (clf,) = paper_code_expression("identify_clf_or_not.py", "prompts")
    clf_prompts = eval(
        compile(ast.Expression(clf), "identify_clf_or_not.py", "eval"),
        {"prefix": templates["template_1"], "batch": [{"instruction": instruction}]},
    )
    output_first, input_first = paper_code_expression("generate_instances.py", "prompt")
    task = {**templates, "task": {"instruction": instruction}}
    run = lambda node: eval(compile(ast.Expression(node), "generate_instances.py", "eval"), task)  # noqa: E731
    return {
        "instruction": scope["encode_prompt"](examples),
        "classification_instruction": scope["encode_prompt"](examples, classification=True),
        "classification": clf_prompts[0],
        "output_first": run(output_first),
        "input_first": run(input_first),
    }


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("templates") / "paper.yaml"
    assert load_script("paper_templates").main([str(PAPER_TEMPLATES), "--output", str(out)]) == 0
    return out


@needs_paper
@pytest.mark.parametrize("instruction", EXAMPLES)
def test_paper_texts_give_the_papers_prompts_byte_for_byte(converted, instruction):
    ours = load_templates(str(converted))
    examples = [e for e in EXAMPLES if e != instruction]
    expected = paper_prompts(instruction, examples)
    assert ours.instruction_prompt(examples) == expected["instruction"]
    assert ours.instruction_prompt(examples, True) == expected["classification_instruction"]
    assert ours.classification_prompt(instruction) == expected["classification"]
    assert ours.instance_prompt(instruction, True) == expected["output_first"]
    assert ours.instance_prompt(instruction, False) == expected["input_first"]


@needs_paper
def test_a_clone_converts_like_the_json_and_brings_the_papers_sft_layouts(converted, tmp_path):
    out = tmp_path / "clone.yaml"
    assert load_script("paper_templates").main([str(PAPER_CODE.parent), "--output", str(out)]) == 0
    from_clone, from_json = load_templates(str(out)), load_templates(str(converted))
    assert from_clone.classification_prefix == from_json.classification_prefix
    assert from_clone.input_first_prefix == from_json.input_first_prefix
    assert from_clone.instruction_header == from_json.instruction_header
    assert from_clone.sft_with_input[0] == "{instruction}\nInput: {input}\nOutput:"
    assert len(from_clone.sft_with_input) == 7 and len(from_clone.sft_without_input) == 6
    assert from_json.sft_with_input == load_templates().sft_with_input  # the JSON has none


# --- another file: recorded, and refused clearly when broken ---------------------------------


def test_another_file_changes_the_recorded_hash(tmp_path):
    other = tmp_path / "t.yaml"
    text = DEFAULT_TEMPLATES_PATH.read_text(encoding="utf-8")
    other.write_text(text.replace("Come up with a series of tasks:", "List new tasks:"))
    seeds = load_seeds()
    default = run_identity(PipelineConfig(), seeds, load_templates())
    changed = run_identity(
        PipelineConfig(prompt_templates=str(other)), seeds, load_templates(str(other))
    )
    assert default["prompts_sha256"] != changed["prompts_sha256"]
    card = provenance(PipelineConfig(prompt_templates=str(other)), "cmd", {})
    assert card["prompt_templates_sha256"] == changed["prompts_sha256"]
    assert load_templates(str(other)).instruction_prompt(["a b c d"]).startswith("List new tasks:")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("instructions: [1, 2\n", "not valid YAML or JSON"),
        ("- a list\n", "expected sections"),
        ("classification: {}\n", "missing section 'instructions'"),
        ("instructions: {}\n", "'instructions.header' must be a text"),
    ],
)
def test_broken_file_is_refused_with_its_name(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(TemplateError, match=message) as err:
        load_templates(str(path))
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('stop: ["\\n", "Task"]', "stop: 3", "'classification.stop' must be a non-empty list"),
        ('query: " {instruction}\\n"', 'query: "\\n"', "'instances.query' must hold {instruction}"),
    ],
)
def test_wrong_value_names_the_key(tmp_path, old, new, message):
    path = tmp_path / "bad.yaml"
    text = DEFAULT_TEMPLATES_PATH.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(TemplateError, match=re.escape(message)):
        load_templates(str(path))


def test_cli_refuses_a_missing_file_without_a_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "self_instruct.cli",
            "generate",
            "--prompt-templates",
            str(tmp_path / "none.yaml"),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "cannot read the prompt templates" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # refused before the output folder is touched
