"""`self-instruct audit`: a judge model's review of a real generated folder (the paper's Table 2).

The judge is a scripted OpenAI-compatible server on 127.0.0.1 whose verdict follows from the
instruction's first word, so every share, interval and failure count is known exactly; a `kill -9`
mid-audit must lose nothing and judge nothing twice; and the embedded 135M model judges for real.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import datasets
import pytest
from cli_runs import data_file, launch, refused, run_cli
from huggingface_hub import DatasetCard
from local_hub import LocalHub
from test_folder_safety import link_to_theirs, snapshot

from self_instruct.audit import judge
from self_instruct.audit.review import AuditConfig, draw_sample, load_instances, run_audit
from self_instruct.dataset_card.audit import write_audit
from self_instruct.export.files import read_manifest, remove_run
from self_instruct.hub.push import push_folder
from self_instruct.layout import AUDIT_DIR
from self_instruct.testing.local_server import LocalServer
from self_instruct.testing.scripted_server import ScriptedApp

ALL_YES = "yes - a real task.\nQ2: yes - it fits.\nQ3: yes - it is right."
# What the scripted judge answers, by the instruction's first word (the scripted generator's verbs).
VERDICTS = {
    "Describe": " no - too vague.\nQ2: yes - it fits.\nQ3: no - wrong.",
    "Explain": " yes - a real task.\nQ2: no - it does not fit.\nQ3: yes - right.",
    "List": " yes - a real task.\nQ2: yes - fine.\nQ3: no - the output is wrong.",
    "Compare": " It all looks fine to me.",  # not the asked format
}
FAILING = "Summarize"  # the server answers 503 to these: the request fails for good
TOKEN = "token-alice-0123456789"
INSTRUCTION = re.compile(r"^Instruction: (.*)$", re.MULTILINE)


def instruction_of(prompt: str) -> str:
    return INSTRUCTION.search(prompt)[1]


def judge_app(latency: float = 0.0) -> ScriptedApp:
    def reply(prompt: str) -> str:
        return VERDICTS.get(instruction_of(prompt).split()[0], " " + ALL_YES)

    def faults(prompt: str, attempt: int) -> str | None:
        return "503" if instruction_of(prompt).startswith(FAILING) else None

    return ScriptedApp(latency=latency, reply=reply, faults=faults)


@pytest.fixture
def folder(run_folder) -> Path:
    """A real folder written by `self-instruct generate` (with the scripted generator): a copy of
    the shared finished run (conftest's `scripted_run`) for this test to audit."""
    return run_folder


def instructions_of(folder: Path) -> set[str]:
    return {row["instruction"] for row in load_instances(folder)}


def audit_args(folder: Path, url: str, *extra: str) -> list[str]:
    return ["audit", str(folder), "--backend", "openai", "--endpoint", url, "--model", "judge",
            "--max-attempts", "1", "--sample-size", "200", *extra]  # fmt: skip


def test_shares_intervals_and_card_match_the_scripted_verdicts(folder):
    instructions = instructions_of(folder)
    verbs = Counter(text.split()[0] for text in instructions)
    failed, unparseable = verbs[FAILING], verbs["Compare"]
    answered = len(instructions) - failed - unparseable
    expected = {  # yes counts over the answered items
        "valid_instruction": answered - verbs["Describe"],
        "appropriate_input": answered - verbs["Explain"],
        "correct_output": answered - verbs["Describe"] - verbs["List"],
        "all_valid": answered - verbs["Describe"] - verbs["Explain"] - verbs["List"],
    }
    assert failed and unparseable and min(expected.values()) > 0  # every path is exercised

    with LocalServer(judge_app()) as server:
        done = run_cli(audit_args(folder, server.url, "--examples", "2"))
    assert done.returncode == 0, done.stderr

    rows = datasets.load_dataset(str(folder), "audit", split="train")
    assert len(rows) == len(instructions) == len(set(rows["instruction"]))
    assert Counter(rows["failure"]) == {"": answered, "request_failed": failed,
                                        "unparseable": unparseable}  # fmt: skip
    card = (folder / "README.md").read_text()
    section = card[card.index("## Quality audit") : card.index("## Provenance")]
    assert f"It answered {answered} of them in the required format" in " ".join(section.split())
    assert f"request_failed: {failed}" in section and f"unparseable: {unparseable}" in section
    for key, yes in expected.items():
        low, high = judge.wilson_interval(yes, answered)
        assert sum(bool(r[key]) for r in rows if not r["failure"]) == yes
        cells = f"| {yes} / {answered} | {100 * yes / answered:.1f}% | {100 * low:.1f}% - "
        assert cells + f"{100 * high:.1f}% |" in section, key
    failing_verbs = {"valid_instruction": ("Describe",), "appropriate_input": ("Explain",),
                     "correct_output": ("Describe", "List")}  # fmt: skip
    blocks = section.split('Judged "no" for')[1:]
    for block, verbs_failed in zip(blocks, failing_verbs.values(), strict=True):
        shown = re.findall(r"^\| (.*?) \| ", block, re.MULTILINE)[1:]  # after the header row
        first = [r["instruction"] for r in rows if r["instruction"].startswith(verbs_failed)]
        assert shown == first[:2]
    assert "`judge` (openai backend)" in section
    for name in ("instructions", "instances", "sft"):  # the earlier configurations still load
        assert len(datasets.load_dataset(str(folder), name, split="train")) > 0


@pytest.mark.parametrize(
    ("text", "answers"),
    [
        (" yes - a task.\nQ2: no - none given.\nQ3: yes - right.", ["yes", "no", "yes"]),
        (
            "Q1: Yes \u2013 fine\nQ2: YES: ok\n\nQ3: no, wrong\nQ4: yes - ignored",
            ["yes", "yes", "no"],
        ),
    ],
)
def test_audit_answers_in_the_format_are_read(text, answers):
    assert [v.answer for v in judge.parse_audit(text)] == answers


@pytest.mark.parametrize(
    "text",
    [
        " Yes\nQ2: No\nQ3: No",  # no reasons (what the 135M judge writes)
        " yes - a\nQ3: yes - b\nQ2: no - c",  # out of order
        " maybe - unsure\nQ2: yes - x\nQ3: yes - y",
        " yes - a\nQ2: yes - b",  # cut off by the token limit
        "**Q1:** yes - a\n**Q2:** yes - b\n**Q3:** yes - c",
        "",
    ],
)
def test_audit_answers_out_of_the_format_are_failures(text):
    with pytest.raises(judge.JudgeFormatError):
        judge.parse_audit(text)


def test_ratings_are_read_strictly():
    assert judge.parse_rating(" A - right.") == judge.Verdict("A", "right.")
    assert judge.parse_rating("Rating: D: off topic\nmore") == judge.Verdict("D", "off topic")
    for text in (" E - no such grade", " b - lower case", " Good answer", " C"):
        with pytest.raises(judge.JudgeFormatError):
            judge.parse_rating(text)


def test_wilson_bounds_solve_the_score_equation():
    """The bounds are where |p_hat - p| = z * sqrt(p (1 - p) / n), the interval's definition."""
    for yes, n in ((54, 100), (0, 10), (10, 10), (1, 3), (180, 200)):
        p_hat = yes / n
        for p in judge.wilson_interval(yes, n):
            gap = abs(p_hat - p) - judge.Z_95 * math.sqrt(p * (1 - p) / n)
            assert abs(gap) < 1e-7, (yes, n, p)  # sqrt near p = 1 costs digits
    assert judge.wilson_interval(0, 0) == (0.0, 1.0)


def test_sample_is_seeded_and_one_instance_per_instruction(folder):
    instances = load_instances(folder)
    sample = draw_sample(instances, 10, seed=3)
    assert sample == draw_sample(instances, 10, seed=3)
    assert sample != draw_sample(instances, 10, seed=4)
    assert len({item["instruction_id"] for item in sample}) == 10
    order = [row["id"] for row in instances]
    assert [item["id"] for item in sample] == sorted((i["id"] for i in sample), key=order.index)


def test_rerun_with_the_same_judge_asks_nothing_and_writes_the_same_file(folder):
    with LocalServer(judge_app()) as server:
        assert run_cli(audit_args(folder, server.url)).returncode == 0
        first = data_file(folder, "audit").read_bytes()
        asked = sum(server.app.attempts.values())
        again = run_cli(audit_args(folder, server.url))
        retried = sum(server.app.attempts.values()) - asked
    assert again.returncode == 0, again.stderr
    assert data_file(folder, "audit").read_bytes() == first
    assert (folder / "README.md").read_text().count("## Quality audit") == 1  # replaced, not added
    assert sorted(p.name for p in (folder / "data").glob("audit-*")) == [
        data_file(folder, "audit").name
    ]
    failed = sum(text.startswith(FAILING) for text in instructions_of(folder))
    assert retried == failed  # only the failed requests are asked again


def test_an_audit_is_part_of_the_version_and_overwrite_removes_it(folder, tmp_path):
    """The card records the audit file's hash (a push checks it) and the manifest names it
    (`--overwrite` deletes it), while a file of the user's named like one stays."""
    theirs = folder / "data" / "audit-mine.parquet"
    theirs.write_bytes(b"not ours")
    with LocalServer(judge_app()) as server:
        assert run_cli(audit_args(folder, server.url)).returncode == 0
    ours = data_file(folder, "audit").relative_to(folder).as_posix()
    card = DatasetCard.load(folder / "README.md").data.to_dict()
    assert ours in card["self_instruct"]["files"]
    assert ours in read_manifest(folder)
    remove_run(folder)
    assert not (folder / ours).exists() and theirs.read_bytes() == b"not ours"


@pytest.mark.parametrize("linked", ["data", ".self-instruct/audit", "README.md"])
def test_audit_refuses_a_link_where_it_writes(folder, tmp_path, linked):
    link = link_to_theirs(folder, linked, tmp_path / "theirs")
    before = snapshot(tmp_path / "theirs")
    with LocalServer(judge_app()) as server:
        assert f"{link} is a symbolic link" in refused(audit_args(folder, server.url), "audit")
    assert not server.app.attempts  # refused before the judge was asked anything
    assert snapshot(tmp_path / "theirs") == before and link.is_symlink()


def audit_log(folder: Path) -> Path | None:
    logs = list((folder / AUDIT_DIR).glob("*/log.jsonl"))
    return logs[0] if logs else None


def test_kill_9_mid_audit_then_rerun_loses_nothing_and_judges_nothing_twice(folder, tmp_path):
    reference = tmp_path / "reference"
    shutil.copytree(folder, reference)
    with LocalServer(judge_app(latency=0.05)) as server:
        assert run_cli(audit_args(reference, server.url)).returncode == 0
        process = launch(audit_args(folder, server.url, "--batch-size", "2"))
        deadline = time.monotonic() + 60
        while (log := audit_log(folder)) is None or log.read_bytes().count(b'"type": "round"') < 2:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        judged_before = log.read_bytes().count(b'"judgment"')
        assert judged_before < len(instructions_of(folder))  # it was cut short
        done = run_cli(audit_args(folder, server.url, "--batch-size", "2"))
    assert done.returncode == 0, done.stderr
    keys = [
        json.loads(line)["key"] for line in log.read_text().splitlines() if '"judgment"' in line
    ]
    assert len(keys) == len(set(keys)), "an item was judged twice"
    rows = datasets.load_dataset(str(folder), "audit", split="train")
    assert len(keys) == sum(not f or f == judge.UNPARSEABLE for f in rows["failure"])
    assert data_file(folder, "audit").read_bytes() == data_file(reference, "audit").read_bytes()


def test_a_pushed_version_holds_the_audit(folder, tmp_path):
    with LocalServer(judge_app()) as server:
        assert run_cli(audit_args(folder, server.url)).returncode == 0
    local = datasets.load_dataset(str(folder), "audit", split="train").to_list()
    with LocalHub(tmp_path / "hub", users={"alice": TOKEN}):
        pushed = push_folder(folder, "alice/audited", token=TOKEN)
        remote = datasets.load_dataset(
            "alice/audited", "audit", revision=pushed.tag, split="train", token=TOKEN,
            cache_dir=str(tmp_path / "cache"),
        )  # fmt: skip
    assert remote.to_list() == local


@pytest.mark.slow
def test_embedded_model_judges_a_real_generated_dataset(generated_dataset, real_backend, tmp_path):
    _, generated_folder, _ = generated_dataset
    folder = tmp_path / "data"
    shutil.copytree(generated_folder, folder)
    config = AuditConfig(folder=str(folder), sample_size=3, max_new_tokens=48, batch_size=3)
    result = run_audit(config, backend=real_backend, progress=False)
    write_audit(folder, result, "audit", config.examples)

    rows = datasets.load_dataset(str(folder), "audit", split="train")
    assert len(rows) == len(result.items) == min(3, len(instructions_of(folder)))
    for row in rows:
        answers = [row[q] for q in judge.QUESTIONS]
        if row["failure"]:
            assert row["failure"] == judge.UNPARSEABLE and answers == [None] * 3
        else:
            assert all(isinstance(a, bool) for a in answers) and row["all_valid"] == all(answers)
        assert row["judge_output"]
    assert "## Quality audit" in (folder / "README.md").read_text()
