"""The run log read once: one summary pass, and one replay for all three configurations."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import pytest

from self_instruct import logfile, runlog
from self_instruct.builder import SelfInstruct
from self_instruct.config import PipelineConfig
from self_instruct.layout import LOG_FILE, RUN_DIR
from self_instruct.pipeline import Pipeline
from self_instruct.records import INSTRUCTION, REJECTED, ROUND, ROUND_RECORDS, RUN
from self_instruct.rows import CONFIG_NAMES
from self_instruct.run import run_to_folder
from self_instruct.runlog import read_log
from self_instruct.summary import summarize

OPTIONS = {"num_instructions": 10, "batch_size": 4, "patience": 3}


@pytest.fixture
def log_reads(monkeypatch) -> list[Path]:
    """Every full pass over a run log file, as the paths read (logfile.units is the one
    reader: scans, damage checks and record streams all go through it)."""
    reads: list[Path] = []
    units = logfile.units

    def counted(path):
        reads.append(path)
        return units(path)

    monkeypatch.setattr(logfile, "units", counted)
    monkeypatch.setattr(runlog, "units", counted)
    return reads


def _finished_run(folder: Path, backend) -> PipelineConfig:
    """A run of 10 instructions, generated into `folder` and exported once."""
    config = PipelineConfig(**OPTIONS)
    run_to_folder(config, folder, command="test", backend=backend)
    return config


def _lines(folder: Path) -> list[dict]:
    text = (folder / RUN_DIR / LOG_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_summary_counts_what_the_log_holds(tmp_path, scripted_backend):
    """Each count against the log file's lines, counted here by hand."""
    _finished_run(tmp_path, scripted_backend)
    lines = _lines(tmp_path)
    assert lines[0]["type"] == RUN and {r["type"] for r in lines[1:]} <= ROUND_RECORDS
    instructions = [r for r in lines if r["type"] == INSTRUCTION]
    markers = [r for r in lines if r["type"] == ROUND]
    summary = summarize(read_log(tmp_path / RUN_DIR), quota=7)
    assert summary.accepted == len(instructions) >= 10
    assert summary.kept == 7 and summary.imported == 0
    assert summary.rejected == Counter(r["reason"] for r in lines if r["type"] == REJECTED)
    assert summary.rounds == len(markers) and summary.next_round == markers[-1]["round"] + 1
    assert summary.instances_kept == sum(len(r["instances"]) for r in instructions[:7])
    assert summary.usage["requests"] == sum(m["requests"] for m in markers) > 0
    funnel = summary.funnel()["instructions"]
    assert funnel["rejected"]["beyond_quota"] == len(instructions) - 7
    assert funnel["generated"] == len(instructions) + sum(summary.rejected.values())


def test_summary_counts_idle_rounds_at_the_end_and_imports_apart(tmp_path):
    log = runlog.RunLog(tmp_path, {"any": "options"})
    log.open()
    imported = {"type": INSTRUCTION, "instances": [{"input": "", "output": "x"}] * 2}
    log.append_round([{**imported, "imported_from": "me/v1"}], {"round": 0, "imported": 1})
    for round_, accepted in [(1, 0), (2, 1), (3, 0), (4, 0)]:
        rejected = {"type": REJECTED, "round": round_, "text": "x", "reason": "too_short"}
        log.append_round([rejected], {"round": round_, "accepted": accepted, "rejected": 1})
    log.close()
    summary = summarize(read_log(tmp_path))
    assert (summary.imported, summary.imported_instances, summary.accepted) == (1, 2, 0)
    assert (summary.rounds, summary.next_round, summary.idle_rounds) == (5, 5, 2)
    assert summary.rejected == {"too_short": 4}


def test_opening_a_run_reads_its_log_three_times(tmp_path, scripted_backend, log_reads):
    """Reopening a finished run: the damage scan, one pass for the pool and the summary, and
    the replay of its instructions (it was seven passes: one per count)."""
    config = PipelineConfig(**OPTIONS)
    first = list(Pipeline(config, tmp_path / "run", backend=scripted_backend, progress=False))
    log_reads.clear()
    again = list(Pipeline(config, tmp_path / "run", backend=scripted_backend, progress=False))
    assert again == first and len(first) == 10
    assert log_reads == [tmp_path / "run" / LOG_FILE] * 3


def test_an_export_replays_the_log_once_for_all_configurations(
    tmp_path, scripted_backend, log_reads
):
    """Exporting a finished run again: the opening passes and one replay for the three
    configurations, then one summary for the funnel and usage (it was 23 passes); the rows
    equal those each configuration's builder makes alone from the log."""
    config = _finished_run(tmp_path / "out", scripted_backend)
    log_reads.clear()
    result = run_to_folder(config, tmp_path / "out", command="test")
    assert len(log_reads) == 4
    run_dir = str(tmp_path / "out" / RUN_DIR)
    for name in CONFIG_NAMES:
        builder = SelfInstruct(
            config_name=name, cache_dir=str(tmp_path / "cache"), run_dir=run_dir, **OPTIONS
        )
        builder.download_and_prepare()
        alone = builder.as_dataset(split="train").to_list()
        (data_file,) = result.data_files[name]
        exported = datasets.Dataset.from_parquet(str(tmp_path / "out" / data_file)).to_list()
        assert exported == alone and len(alone) == result.num_rows[name] > 0
