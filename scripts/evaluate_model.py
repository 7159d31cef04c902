"""
# Base vs tuned on the paper's 252 user-oriented instructions
```bash
python scripts/evaluate_model.py \
    --models checkpoints/smollm2-135m-instruct checkpoints/smollm2-135m-self-instruct \
    --tasks ../shared/anchors/self_instruct/user_oriented_instructions.jsonl \
    --output-dir eval --json eval/scores.json
```

# Base vs tuned on our bundled seed tasks (held out if generated with --no-sft-include-seed-tasks)
```bash
python scripts/evaluate_model.py \
    --models embedded checkpoints/smollm2-135m-self-instruct \
    --num-tasks 50
```

# Any dataset with instruction / input / output columns, e.g. a pushed `instances` configuration
```bash
python scripts/evaluate_model.py \
    --models checkpoints/smollm2-135m-self-instruct \
    --tasks user/self-instruct-demo --tasks-config instances --tasks-revision v1
```

# Score existing prediction files, no model
```bash
python scripts/evaluate_model.py \
    --predictions eval/base.jsonl eval/tuned.jsonl \
    --prediction-field response --reference-field target \
    --json scores.json
```

# Also rate every answer A-D with a judge model (the paper's Figure 6), plotted as a PNG
```bash
python scripts/evaluate_model.py \
    --predictions eval/base.jsonl eval/tuned.jsonl \
    --judge Qwen/Qwen2.5-72B-Instruct --judge-backend openai --judge-chat \
    --judge-endpoint http://gpu1:8000 --plot eval/ratings.png
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from held_out_tasks import generate_answers, load_tasks, read_jsonl, write_predictions

from self_instruct.audit.judge import JudgeArguments
from self_instruct.config import BUNDLED_SEEDS, EMBEDDED_MODEL
from self_instruct.errors import ConfigError
from self_instruct.utils.ranges import COUNT, RANGE, check_ranges


@dataclass
class EvaluationArguments:
    """Models to compare (or prediction files to score), the tasks, and where results go."""

    models: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Models to generate with, compared with the first (the base): checkpoint "
            f"folders, Hub ids, .gguf files or '{EMBEDDED_MODEL}'."
        },
    )
    tasks: str = field(
        default=BUNDLED_SEEDS,
        metadata={
            "help": "Held-out tasks: a .jsonl in the paper's schema (instruction + instances, e.g. "
            "user_oriented_instructions.jsonl), a dataset folder or Hub id with instruction/input/"
            f"output columns, or '{BUNDLED_SEEDS}' for our seed tasks."
        },
    )
    tasks_config: str | None = field(default=None, metadata={"help": "Dataset configuration."})
    tasks_split: str = field(default="train", metadata={"help": "Dataset split."})
    tasks_revision: str | None = field(default=None, metadata={"help": "Hub dataset revision."})
    num_tasks: int | None = field(
        default=None, metadata={"help": "Keep the first N tasks.", RANGE: COUNT}
    )
    max_new_tokens: int = field(
        default=256, metadata={"help": "Token limit of one answer.", RANGE: COUNT}
    )
    batch_size: int = field(
        default=8, metadata={"help": "Prompts per generate() call.", RANGE: COUNT}
    )
    predictions: list[str] = field(
        default_factory=list,
        metadata={"help": "Score these .jsonl prediction files instead of running a model."},
    )
    prediction_field: str = field(
        default="response", metadata={"help": "Field holding the prediction in each line."}
    )
    reference_field: str = field(
        default="target", metadata={"help": "Field holding the reference in each line."}
    )
    output_dir: str | None = field(
        default=None,
        metadata={"help": "Write each model's answers here as <name>.jsonl (for --predictions)."},
    )
    json: str | None = field(default=None, metadata={"help": "Also write the table as JSON."})
    instruction_field: str = field(
        default="instruction", metadata={"help": "With --predictions and --judge: the task."}
    )
    input_field: str = field(
        default="input", metadata={"help": "With --predictions and --judge: its input, if any."}
    )

    def __post_init__(self):
        check_ranges(self)
        if bool(self.models) == bool(self.predictions):
            raise ConfigError("Give either --models (generate and score) or --predictions (score).")


def mean_rouge_l(predictions: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F-measure x 100, exactly rouge_score's (use_stemmer=False)."""
    import evaluate

    from self_instruct.rouge import METRIC_PATH

    scores = evaluate.load(METRIC_PATH).compute(predictions=predictions, references=references)
    return 100 * scores["rougeL"]


def score_prediction_file(path: Path, prediction_field: str, reference_field: str) -> dict:
    """One table row for a .jsonl of predictions; a line without the fields is an error."""
    records = read_jsonl(path)
    if not records:
        raise ValueError(f"{path} has no rows.")
    for line, record in enumerate(records, 1):
        missing = {prediction_field, reference_field} - set(record)
        if missing:
            raise ValueError(
                f"{path} line {line} lacks {sorted(missing)} (it has {sorted(record)}); "
                "name the fields with --prediction-field and --reference-field."
            )
    predictions = [str(r[prediction_field]) for r in records]
    references = [str(r[reference_field]) for r in records]
    score = mean_rouge_l(predictions, references)
    return {"name": path.stem, "rows": len(records), "rouge_l": round(score, 2)}


def evaluate_models(args: EvaluationArguments) -> tuple[list[dict], dict[str, list[tuple]]]:
    """Generate with each model, keep its answers, score; the first model is the baseline.

    Also returns each model's `(instruction, input, reference, answer)` items, for --judge."""
    tasks = load_tasks(args)
    scores, answered = {}, {}
    for model in args.models:
        answers = generate_answers(model, tasks, args)
        if args.output_dir:
            write_predictions(Path(args.output_dir), model, tasks, answers)
        scores[model] = round(mean_rouge_l(answers, [t.target for t in tasks]), 2)
        answered[model] = [
            (t.instruction, t.input, t.target, a) for t, a in zip(tasks, answers, strict=True)
        ]
    base = scores[args.models[0]]
    table = [
        {"model": model, "tasks": len(tasks), "rouge_l": score, "vs_base": round(score - base, 2)}
        for model, score in scores.items()
    ]
    return table, answered


def prediction_items(path: Path, args: EvaluationArguments) -> list[tuple[str, str, str, str]]:
    """A prediction file's `(instruction, input, reference, answer)` items, for --judge."""
    items = []
    for line, record in enumerate(read_jsonl(path), 1):
        if args.instruction_field not in record:
            raise ValueError(
                f"{path} line {line} lacks {args.instruction_field!r} (it has {sorted(record)}): "
                "--judge needs the task; name its field with --instruction-field."
            )
        fields = (args.instruction_field, args.input_field, args.reference_field)
        items.append(
            tuple(str(record.get(f) or "") for f in fields) + (record[args.prediction_field],)
        )
    return items


def add_ratings(table: list[dict], answered: dict[str, list[tuple]], args: JudgeArguments) -> Path:
    """Rate each model's answers A-D with the judge, add the shares (% of the answers it rated;
    `unrated` counts the rest) to its row, and plot them; return the plot's path."""
    from self_instruct.audit.judge import RATINGS, rate_models, rating_shares
    from self_instruct.dataset_card.plots import plot_ratings

    counts = rate_models(answered, args.backend_config(), args.judge_max_new_tokens)
    shares = {name: rating_shares(c) for name, c in counts.items()}
    for row, name in zip(table, answered, strict=True):
        row |= {r: round(100 * shares[name][r], 1) for r in RATINGS}
        row["unrated"] = len(answered[name]) - sum(counts[name][r] for r in RATINGS)
    plot = Path(args.plot)
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot_ratings(shares, plot.parent, plot.name)
    return plot


def format_table(rows: list[dict]) -> str:
    """A Markdown table, pasteable into a README; scores with two decimals."""
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [columns, ["-" * w for w in widths], *cells]
    return "\n".join(
        "| " + " | ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    )


def _cell(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main(args: EvaluationArguments, judge: JudgeArguments | None = None) -> list[dict]:
    judge = judge or JudgeArguments()
    if args.predictions:
        paths = [Path(p) for p in args.predictions]
        table = [
            score_prediction_file(p, args.prediction_field, args.reference_field) for p in paths
        ]
        if judge.judge:
            answered = {p.stem: prediction_items(p, args) for p in paths}
    else:
        table, answered = evaluate_models(args)
    if judge.judge:
        plot = add_ratings(table, answered, judge)
    print(format_table(table))
    if judge.judge:
        print(f"Ratings by {judge.judge} (A best, D worst; % of rated answers), plotted: {plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    return table


def make_parser(prog: str | None = None):
    from self_instruct.cli.args import make_parser as options_parser

    return options_parser(
        (EvaluationArguments, JudgeArguments),
        prog,
        "Score models, or their prediction files, on held-out tasks by ROUGE-L; optionally a "
        "judge model rates every answer A-D (the paper's Figure 6).",
    )


if __name__ == "__main__":
    parser = make_parser()
    try:
        arguments = parser.parse_args_into_dataclasses()
    except ConfigError as err:  # an option out of its range, or none of --models/--predictions
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    main(*arguments)
