"""One constructor per record kind: each writes its kind's `type` tag, and nothing else does.

Every kind goes through its constructor, a real run log on disk and the log reader, and comes
back as it was made, its tag the one spelling of its kind. The package's source is then read for
dict literals that tag a record: they are all in runlog/records.py.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import self_instruct
from self_instruct.layout import LOG_FILE
from self_instruct.rouge.index import RougeIndex
from self_instruct.runlog import RunLog, read_log
from self_instruct.runlog import records as kinds
from self_instruct.runlog.check import COUNT, SEAL
from self_instruct.runlog.records import (
    imported_instruction,
    instruction,
    judgment,
    rejection,
    round_marker,
    run_header,
)

PACKAGE = Path(self_instruct.__file__).parent
IDENTITY = {"seed": 3}
# The tags as they are on disk, written out: a renamed tag breaks every log already written.
TAGS = {"run", "instruction", "rejected", "judgment", "round"}
_FAILURE = {"failure": None, "raw": "{}", "error": ""}


def _decisions():
    """A real filter's decisions: one accepted instruction, one near-duplicate of the pool."""
    index = RougeIndex()
    index.add(["Write a poem about the sea."])
    texts = ["List three prime numbers greater than ten.", "Write a poem about the sea!"]
    accepted, rejected = index.filter(texts, 0.7, 10)
    assert accepted.accepted and not rejected.accepted
    return accepted, rejected


def _round_records() -> list[tuple[str, dict]]:
    """(expected tag, record) for each kind a round holds, each from its constructor."""
    accepted, near = _decisions()
    instances = {
        "is_classification": False,
        "instances": [{"input": "", "output": "11, 13, 17"}],
        "rejected_instances": [{"input": "", "output": "", "reason": "empty_output"}],
    }
    made = instruction(
        id_="r00000-00",
        round_=0,
        prompt=0,
        text="List three prime numbers greater than ten.",
        decision=accepted,
        examples=["Write a poem about the sea."],
        instances=instances,
    )
    kept = ("id", "round", "instruction", "is_classification", "max_rouge_l", "mean_rouge_l")
    fields = {k: made[k] for k in (*kept, "most_similar", "prompt_instructions")}
    return [
        ("instruction", made),
        ("instruction", imported_instruction(fields, instances["instances"], "me/data@v1")),
        ("rejected", rejection(0, "Write a poem about the sea!", "too_similar", near)),
        ("rejected", rejection(0, "x" * 3_000, "too_short")),
        ("judgment", judgment(key="k", round_=0, answers=[True], reasons=["ok"], **_FAILURE)),
    ]


def test_each_kind_round_trips_through_its_constructor_and_the_log(tmp_path):
    expected = _round_records()
    log = RunLog(tmp_path, IDENTITY)
    assert list(log.open()) == []
    marker = round_marker({"round": 0, "accepted": 2, "rejected": 2})
    log.append_round([record for _, record in expected], marker)
    log.close()

    header = json.loads((tmp_path / LOG_FILE).read_text(encoding="utf-8").splitlines()[0])
    assert header == run_header(IDENTITY)
    assert header["type"] == "run"
    *records, read_marker = read_log(tmp_path)
    assert records == [record for _, record in expected]
    assert [r["type"] for r in records] == [tag for tag, _ in expected]
    assert records[0]["prompt"] == 0 and "imported_from" not in records[0]
    assert records[1]["imported_from"] == "me/data@v1" and "prompt" not in records[1]
    assert "max_rouge_l" in records[2] and "max_rouge_l" not in records[3]
    sealed = {k: v for k, v in read_marker.items() if k not in (COUNT, SEAL)}
    assert sealed == marker and read_marker["type"] == "round"
    assert list(read_marker)[-1] == "type"  # the tag last, after the seal, as logs always had it


def test_the_tags_are_the_ones_on_disk():
    assert {kinds.RUN, *kinds.ROUND_RECORDS} == TAGS


def _tagged_dicts(path: Path) -> list[int]:
    """Lines of `path` with a dict literal whose "type" key holds a record tag."""
    names = {"RUN", "INSTRUCTION", "REJECTED", "JUDGMENT", "ROUND"}
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            is_type = isinstance(key, ast.Constant) and key.value == "type"
            is_tag = (isinstance(value, ast.Name) and value.id in names) or (
                isinstance(value, ast.Constant) and value.value in TAGS
            )
            if is_type and is_tag:
                lines.append(node.lineno)
    return lines


def test_only_the_constructors_write_a_tag():
    found = {p: _tagged_dicts(p) for p in sorted(PACKAGE.rglob("*.py")) if "testing" not in p.parts}
    constructors = found.pop(PACKAGE / "runlog" / "records.py")
    assert len(constructors) == len(TAGS), constructors  # one constructor a kind
    others = [f"{path}:{line}" for path, lines in found.items() for line in lines]
    assert not others, f"records tagged outside runlog/records.py: {others}"
