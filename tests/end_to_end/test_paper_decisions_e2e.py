"""The real CLI against an OpenAI-compatible server on 127.0.0.1 that answers with hand-written
completions, one case per decision rule of issue 15.

The expected data below was written by reading the paper's released code, not by running ours:
`bootstrap_instructions.py` (post_process_gpt3_response), `generate_instances.py` (the yes/no
test, presence penalty 1.5, stop "Example 6"), `prepare_for_finetuning.py` (parse_*_task,
filter_*_instances, 5 instances per task, --include_seed_tasks, the 50% field-name step).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import datasets
import pytest

from self_instruct.prompting.prompts import load_templates
from self_instruct.testing.local_server import LocalServer, Reply

TEMPLATES = load_templates()
CLI = Path(sys.executable).parent / "self-instruct"

# Instruction rounds, in request order (one prompt per round: --batch-size 1).
ROUNDS = [
    # Rule 1: stopped at the token limit, so the paper keeps none of its items.
    (
        " Describe the water cycle for young children\n10. Explain how rainbows form in the sky"
        "\n11. List the planets of the solar sy",
        "length",
    ),
    (
        " Write A Program that prints prime numbers\n"  # rule 2: rejected after capitalize()
        "10. WRITE A PROGRAM to reverse a string\n"  # rule 2 again
        "11. write an SQL query to count orders per customer\n"  # stored as capitalize() gives it
        "12. Classify the tweet as happy or sad\n"
        "13. Give three tips for learning a new language\n"
        "14. Name the capital city of the given country\n"
        "15. Tell which day of the week the given date falls on",
        "stop",
    ),
]
CLASSIFY = {
    "Write an sql query to count orders per customer": " Yes.",  # rule 8: not one of the three
    "Classify the tweet as happy or sad": " Yes",
    "Give three tips for learning a new language": " yes, it is",  # rule 8: no
    "Name the capital city of the given country": " No",
    "Tell which day of the week the given date falls on": "YES",
}
DAYS = [
    ("Date: 2024-01-01", "Monday"),
    ("Date: 2024-01-02", "Tuesday"),
    ("Date: 2024-01-03", "Wednesday"),
    ("Date: 2024-01-04", "Thursday"),
    ("Date: 2024-01-05", "Friday"),
    ("Date: 2024-01-06", "Saturday"),
    ("Date: 2024-01-07", "Sunday"),
]
INSTANCES = {
    # Rule 3: neither an Example marker nor an Output field.
    "Write an sql query to count orders per customer": (
        "SELECT customer_id, COUNT(*) FROM orders GROUP BY customer_id;",
        "stop",
    ),
    # Rule 4: output-first inputs keep their field name.
    "Classify the tweet as happy or sad": (
        "Class label: Happy\nTweet: Sunny day at the beach with friends!\n"
        "Class label: Sad\nTweet: My flight got cancelled again.\n",
        "stop",
    ),
    # Rule 9: "Example 1." is a marker too.
    "Give three tips for learning a new language": (
        "Example 1.\nOutput: Practise a little every day.\nExample 2.\n"
        "Output: Watch films with subtitles.\nExample 3.\nOutput: Find a conversation partner.",
        "stop",
    ),
    # A length stop drops the last instance only.
    "Name the capital city of the given country": (
        "Example 1\nCountry: France\nOutput: Paris\nExample 2\nCountry: Japan\nOutput: Tokyo\n"
        "Example 3\nCountry: Ken",
        "length",
    ),
    # Rule 5: seven valid instances, five kept.
    "Tell which day of the week the given date falls on": (
        "".join(f"Class label: {day}\n{date}\n" for date, day in DAYS),
        "stop",
    ),
}
EXPECTED_INSTRUCTIONS = list(CLASSIFY)
EXPECTED_CLASSIFICATION = [False, True, False, False, True]
EXPECTED_INSTANCES = {
    "Write an sql query to count orders per customer": [],
    "Classify the tweet as happy or sad": [
        ("Tweet: Sunny day at the beach with friends!", "Happy"),
        ("Tweet: My flight got cancelled again.", "Sad"),
    ],
    "Give three tips for learning a new language": [
        ("", "Practise a little every day."),
        ("", "Watch films with subtitles."),
        ("", "Find a conversation partner."),
    ],
    "Name the capital city of the given country": [
        ("Country: France", "Paris"),
        ("Country: Japan", "Tokyo"),
    ],
}
SEEDS = [
    {
        "id": "seed_task_0",
        "name": "german",
        "instruction": "Translate the sentence into German.",
        "instances": [{"input": "Sentence: I like apples.", "output": "Ich mag Äpfel."}],
        "is_classification": False,
    },
    {
        "id": "seed_task_1",
        "name": "goldfish",
        "instruction": "Suggest a name for a pet goldfish.",
        "instances": [{"input": "", "output": "Bubbles"}],
        "is_classification": False,
    },
    {
        "id": "seed_task_2",
        "name": "review",
        "instruction": "Decide whether the movie review is positive or negative.",
        "instances": [{"input": "Review: A dull, slow film.", "output": "Negative"}],
        "is_classification": True,
    },
]


class HandWritten:
    """/v1/completions answered from the tables above; every request body is kept."""

    def __init__(self, rounds):
        self.rounds = list(rounds)
        self.bodies: list[dict] = []
        self.lock = threading.Lock()

    def handle(self, method, path, body):
        if method != "POST" or not path.endswith("/v1/completions"):
            return Reply(404, {"error": "not found"})
        with self.lock:
            self.bodies.append(body)
            text, reason = self._answer(body["prompt"])
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        choice = {"index": 0, "text": text, "finish_reason": reason}
        return Reply(
            200, {"id": "x", "object": "text_completion", "choices": [choice], "usage": usage}
        )

    def _answer(self, prompt: str) -> tuple[str, str]:
        if prompt.startswith(
            (TEMPLATES.instruction_header, TEMPLATES.classification_instruction_header)
        ):
            return self.rounds.pop(0) if self.rounds else (" Ok", "stop")
        instruction = prompt.rsplit("Task: ", 1)[1].split("\n", 1)[0]
        if prompt.startswith(TEMPLATES.classification_prefix):
            return CLASSIFY.get(instruction, " No"), "stop"
        return INSTANCES.get(instruction, ("Output: fine", "stop"))


def generate(tmp_path: Path, server: LocalServer, *options: str) -> Path:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(s) + "\n" for s in SEEDS), encoding="utf-8")
    out = tmp_path / "out"
    command = [
        str(CLI), "generate", "--backend", "openai", "--endpoint", server.url, "--model", "test",
        "--seeds", str(seeds), "--batch-size", "1", "--max-concurrency", "1", "--patience", "3",
        "--output", str(out), *options,
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def load(out: Path, config: str) -> datasets.Dataset:
    return datasets.load_dataset(str(out), config, split="train")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper-decisions")
    app = HandWritten(ROUNDS)
    with LocalServer(app) as server:
        out = generate(tmp, server, "--num-instructions", "5")
    return out, app


def test_kept_instructions_are_the_papers(run):
    out, _ = run
    rows = load(out, "instructions")
    assert rows["instruction"] == EXPECTED_INSTRUCTIONS  # rules 1 and 2
    assert rows["is_classification"] == EXPECTED_CLASSIFICATION  # rule 8
    assert rows["round"] == [1] * 5


def test_instances_per_task_are_the_papers(run):
    out, _ = run
    rows = load(out, "instances")
    by_task: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by_task.setdefault(row["instruction"], []).append((row["input"], row["output"]))
    days = by_task.pop("Tell which day of the week the given date falls on")
    assert len(days) == 5 and set(days) <= set(DAYS)  # rule 5: a sample of 5 of the 7
    assert by_task == {k: v for k, v in EXPECTED_INSTANCES.items() if v}  # rules 3, 4, 9
    assert load(out, "instructions")["num_instances"] == [0, 2, 3, 2, 5]


def stepped(text: str) -> set[str]:
    """The two inputs the paper's fine-tuning step can make of `text` (a coin flip each)."""
    names = set(re.findall(r"(\w+):", text))
    after = text.split(":", 1)[1] if len(names) == 1 else text
    return {text, after.strip().replace("\n\n", "\n")}


def test_sft_rows_hold_the_instances_and_the_seeds(run):
    out, _ = run
    sft = load(out, "sft")
    instances = {row["id"]: row for row in load(out, "instances")}
    seeds = {
        f"{s['id']}-{k}": {"instruction": s["instruction"], **inst}
        for s in SEEDS
        for k, inst in enumerate(s["instances"])
    }
    assert len(sft) == len(instances) + len(seeds)  # rule 6: the seed instances join
    assert {row["instance_id"] for row in sft} == set(instances) | set(seeds)
    for row in sft:
        source = instances.get(row["instance_id"]) or seeds[row["instance_id"]]
        user = row["prompt"][0]["content"]
        assert source["instruction"] in user
        assert row["completion"][0]["content"] == source["output"]
        # Rule 4: the input as written or without its field name, never anything else.
        forms = [form for form in stepped(source["input"]) if form]
        assert not forms or any(form in user for form in forms), (user, source)


def test_requests_carry_the_papers_sampling(run):
    _, app = run
    instance_prefixes = (TEMPLATES.input_first_prefix, TEMPLATES.output_first_prefix)
    instance_bodies = [b for b in app.bodies if b["prompt"].startswith(instance_prefixes)]
    instruction_bodies = [
        b for b in app.bodies if b["prompt"].startswith(TEMPLATES.instruction_header)
    ]
    assert len(instance_bodies) == 5 and len(instruction_bodies) == 2
    assert {b["presence_penalty"] for b in instance_bodies} == {1.5}  # rule 9
    assert {tuple(b["stop"]) for b in instance_bodies} == {("Example 6", "Task:")}
    assert {b["presence_penalty"] for b in instruction_bodies} == {2.0}
    output_first = [b for b in instance_bodies if b["prompt"].startswith(instance_prefixes[1])]
    assert len(output_first) == 2  # the tweet and the weekday tasks


def test_classification_only_runs_still_ask_the_classifier(tmp_path):
    """Rule 7: the classifier decides, so a "No" gets the input-first prompt."""
    rounds = [(" Give three tips for learning a new language", "stop")]
    app = HandWritten(rounds)
    with LocalServer(app) as server:
        out = generate(tmp_path, server, "--num-instructions", "1", "--classification-only")
    assert app.bodies[0]["prompt"].startswith(TEMPLATES.classification_instruction_header)
    assert load(out, "instructions")["is_classification"] == [False]
    asked = [b["prompt"] for b in app.bodies]
    assert sum(p.startswith(TEMPLATES.classification_prefix) for p in asked) == 1
    assert sum(p.startswith(TEMPLATES.input_first_prefix) for p in asked) == 1
