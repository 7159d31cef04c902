"""scripts/evaluate_model.py: ROUGE-L of prediction files and of models' answers to held-out tasks.

Scores are checked against `rouge_score` computed here, independently of our metric.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from anchors import USER_ORIENTED, skip_unless_present
from matplotlib.image import imread
from rouge_score.rouge_scorer import RougeScorer
from script_modules import SCRIPTS, load_script, smollm2_checkpoint

from self_instruct.testing.local_server import LocalServer
from self_instruct.testing.scripted_server import ScriptedApp

evaluate_model = load_script("evaluate_model")
held_out_tasks = load_script("held_out_tasks")  # imported by evaluate_model: the same module

BASE = [
    {"response": "The cat sat on the mat.", "target": "A cat sat on a mat."},
    {"response": "", "target": "Paris is the capital of France."},
    {"response": "Paris, France's capital!", "target": "Paris is the capital of France."},
    {"response": "yes", "target": "Yes"},
]
TUNED = [
    {"answer": "Positive - I LOVED it", "gold": "positive"},
    {"answer": "1, 2, 3, 5, 8", "gold": "1 2 3 5 8 13"},
    {"answer": "Café au lait ☕ tastes good", "gold": "cafe au lait tastes good"},
]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    return smollm2_checkpoint(tmp_path_factory)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def expected_score(rows: list[dict], prediction: str, reference: str) -> float:
    """Mean rouge_score ROUGE-L F-measure x 100: reference as target, prediction as candidate."""
    scorer = RougeScorer(["rougeL"], use_stemmer=False)
    scores = [scorer.score(row[reference], row[prediction])["rougeL"].fmeasure for row in rows]
    return round(100 * sum(scores) / len(scores), 2)


def run_script(*args: str) -> str:
    command = [sys.executable, str(SCRIPTS / "evaluate_model.py"), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def test_prediction_files_score_as_rouge_score(tmp_path):
    base, tuned = write_jsonl(tmp_path / "base.jsonl", BASE), tmp_path / "tuned.jsonl"
    write_jsonl(tuned, [{"response": r["answer"], "target": r["gold"]} for r in TUNED])
    stdout = run_script("--predictions", str(base), str(tuned), "--json", str(tmp_path / "s.json"))

    expected = [
        {"name": "base", "rows": 4, "rouge_l": expected_score(BASE, "response", "target")},
        {"name": "tuned", "rows": 3, "rouge_l": expected_score(TUNED, "answer", "gold")},
    ]
    assert json.loads((tmp_path / "s.json").read_text()) == expected
    rows = [line.split("|")[1:-1] for line in stdout.splitlines()[2:]]
    assert [[cell.strip() for cell in row] for row in rows] == [
        [e["name"], str(e["rows"]), f"{e['rouge_l']:.2f}"] for e in expected
    ]


def test_field_flags_name_the_columns(tmp_path):
    path = write_jsonl(tmp_path / "tuned.jsonl", TUNED)
    stdout = run_script(
        "--predictions", str(path), "--prediction-field", "answer", "--reference-field", "gold"
    )
    assert f"| tuned | 3    | {expected_score(TUNED, 'answer', 'gold'):.2f}" in stdout


def test_missing_field_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [*BASE[:2], {"response": "x"}])
    with pytest.raises(ValueError, match=r"p.jsonl line 3 lacks \['target'\]"):
        evaluate_model.score_prediction_file(path, "response", "target")


def args(**kwargs):
    return evaluate_model.EvaluationArguments(models=["unused"], **kwargs)


def test_tasks_from_paper_schema_and_from_a_dataset(tmp_path):
    seeds = evaluate_model.load_tasks(args(num_tasks=5))
    assert len(seeds) == 5 and all(task.instruction and task.target for task in seeds)
    rows = [{"instruction": "Add.", "input": "2, 3", "output": "5", "id": "x"}]
    (tmp_path / "ds").mkdir()
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "ds" / "train.parquet")
    assert evaluate_model.load_tasks(args(tasks=str(tmp_path / "ds"))) == [
        held_out_tasks.Task("Add.", "2, 3", "5")
    ]
    skip_unless_present(USER_ORIENTED)
    user_oriented = evaluate_model.load_tasks(args(tasks=str(USER_ORIENTED)))
    first = json.loads(USER_ORIENTED.read_text().splitlines()[0])
    assert len(user_oriented) == 252
    assert user_oriented[0] == held_out_tasks.Task(
        first["instruction"], first["instances"][0]["input"], first["instances"][0]["output"]
    )


def test_rows_without_task_fields_are_refused(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", [{"prompt": "hi", "completion": "hello"}])
    with pytest.raises(ValueError, match=r"t.jsonl row 1 has fields \['completion', 'prompt'\]"):
        evaluate_model.load_tasks(args(tasks=str(tmp_path / "t.jsonl")))


@pytest.mark.slow
def test_base_vs_tuned_table_from_models(tmp_path, checkpoint, capsys):
    """The embedded GGUF against its exported checkpoint: the same weights, so the same greedy
    answers; the files written rescore to the table's numbers. Seed tasks: short prompts."""
    out = tmp_path / "answers"
    parser = evaluate_model.make_parser()
    cli_args, judge_args = parser.parse_args_into_dataclasses(
        ["--models", "embedded", str(checkpoint), "--tasks", "bundled", "--num_tasks", "3",
         "--max_new_tokens", "8", "--output_dir", str(out), "--json", str(tmp_path / "s.json")]
    )  # fmt: skip
    evaluate_model.main(cli_args, judge_args)

    table = json.loads((tmp_path / "s.json").read_text())
    assert [(row["model"], row["tasks"], row["vs_base"]) for row in table] == [
        ("embedded", 3, 0.0),
        (str(checkpoint), 3, 0.0),
    ]
    header = [cell.strip() for cell in capsys.readouterr().out.splitlines()[0].split("|")[1:-1]]
    assert header == ["model", "tasks", "rouge_l", "vs_base"]
    base, tuned = out / "embedded.jsonl", out / f"{checkpoint.name}.jsonl"
    assert base.read_text() == tuned.read_text()
    answers = [json.loads(line) for line in base.read_text().splitlines()]
    assert all(row["response"] for row in answers)
    rescored = evaluate_model.score_prediction_file(base, "response", "target")
    assert (
        rescored["rouge_l"] == table[0]["rouge_l"] == expected_score(answers, "response", "target")
    )


# --- --judge: the paper's Figure 6 A-D rating, by a scripted judge on 127.0.0.1 ------------------

RATED = re.compile(
    r"\(other answers can be just as good\): (.*)\nAnswer to grade: (.*)\n\nRating:$", re.S
)


def rate_by_rule(prompt: str) -> str:
    """A: the reference itself; B: the reference and more; C: something else; D: nothing;
    an answer of "???" gets a reply in no format at all."""
    reference, answer = RATED.search(prompt).groups()
    if answer == "???":
        return " I would say it is fine."
    if answer == reference:
        return " A - it is the reference answer."
    if answer.startswith(reference):
        return " B - right, with extra words."
    return " D - no answer." if not answer else " C - not what was asked."


JUDGED = {
    "base": ["Paris", "Paris, France", "", "???", "Lyon"],  # A B D - C
    "tuned": ["Paris", "Paris", "Paris is nice", "Paris"],  # A A B A
}


def test_judge_rates_prediction_files_on_the_a_to_d_scale_and_plots_them(tmp_path):
    paths = []
    for name, answers in JUDGED.items():
        rows = [{"instruction": "Name the capital of France.", "input": "", "target": "Paris",
                 "response": answer} for answer in answers]  # fmt: skip
        paths.append(str(write_jsonl(tmp_path / f"{name}.jsonl", rows)))
    plot = tmp_path / "figures" / "ratings.png"
    with LocalServer(ScriptedApp(reply=rate_by_rule)) as server:
        stdout = run_script(
            "--predictions", *paths, "--judge", "judge", "--judge-backend", "openai",
            "--judge-endpoint", server.url, "--plot", str(plot), "--json", str(tmp_path / "s.json"),
        )  # fmt: skip
        asked = sum(server.app.attempts.values())
    table = json.loads((tmp_path / "s.json").read_text())
    shares = [{k: row[k] for k in ("name", "A", "B", "C", "D", "unrated")} for row in table]
    assert shares == [
        {"name": "base", "A": 25.0, "B": 25.0, "C": 25.0, "D": 25.0, "unrated": 1},
        {"name": "tuned", "A": 75.0, "B": 25.0, "C": 0.0, "D": 0.0, "unrated": 0},
    ]
    assert asked == 9
    assert "| base  | 5    |" in stdout and f"plotted: {plot}" in stdout
    assert imread(plot).shape[2] == 4  # a PNG matplotlib reads back (RGBA)


def test_judge_needs_the_instruction_of_each_prediction(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", BASE)
    judged = evaluate_model.EvaluationArguments(predictions=[str(path)])
    with pytest.raises(ValueError, match=r"p.jsonl line 1 lacks 'instruction'"):
        evaluate_model.prediction_items(path, judged)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-tasks", "0"], "--num-tasks must be >= 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--judge-max-new-tokens", "0"], "--judge-max-new-tokens must be >= 1, got 0"),
        ([], "Give either --models (generate and score) or --predictions (score)."),
    ],
)
def test_an_option_out_of_range_is_a_usage_error(tmp_path, flags, message):
    predictions = ["--predictions", str(write_jsonl(tmp_path / "p.jsonl", BASE))] if flags else []
    command = [sys.executable, str(SCRIPTS / "evaluate_model.py"), *predictions, *flags]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr == f"evaluate_model.py: error: {message}\n"
