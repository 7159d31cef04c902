"""The run log read once: one summary pass, and one replay for all three configurations."""

from __future__ import annotations

import builtins
import io
import json
import os
from collections import Counter
from pathlib import Path

import datasets
import pytest

from self_instruct.config import PipelineConfig
from self_instruct.dataset_builder import SelfInstruct
from self_instruct.generation.pipeline import Pipeline
from self_instruct.layout import CONFIG_NAMES, LOG_FILE, RUN_DIR
from self_instruct.run import run_to_folder
from self_instruct.runlog import log as runlog
from self_instruct.runlog.log import read_log
from self_instruct.runlog.records import INSTRUCTION, REJECTED, ROUND, ROUND_RECORDS, RUN
from self_instruct.runlog.summary import summarize

OPTIONS = {"num_instructions": 10, "batch_size": 4, "patience": 3}


@pytest.fixture
def log_reads(monkeypatch) -> list[Path]:
    """Every opening of a run log file for reading, as the paths opened: each one is a pass
    over the log (a scan, a damage check, a stream of records), whichever code makes it."""
    reads: list[Path] = []
    real_open = io.open

    def counted(file, mode="r", *args, **kwargs):
        is_path = isinstance(file, str | bytes | os.PathLike)
        if is_path and "r" in mode and Path(os.fsdecode(file)).name == LOG_FILE:
            reads.append(Path(os.fsdecode(file)))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", counted)  # what pathlib's Path.open calls
    monkeypatch.setattr(builtins, "open", counted)
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
    imported = {
        "type": INSTRUCTION,
        **dict.fromkeys(("id", "instruction", "max_rouge_l", "mean_rouge_l"), ""),
        **{"round": 0, "most_similar": [], "prompt_instructions": [], "is_classification": False},
        **{"instances": [{"input": "", "output": "x"}] * 2, "rejected_instances": []},
    }
    log.append_round([{**imported, "imported_from": "me/v1"}], {"round": 0, "imported": 1})
    for round_, accepted in [(1, 0), (2, 1), (3, 0), (4, 0)]:
        rejected = {"type": REJECTED, "round": round_, "text": "x", "reason": "too_short"}
        log.append_round([rejected], {"round": round_, "accepted": accepted, "rejected": 1})
    log.close()
    summary = summarize(read_log(tmp_path))
    assert (summary.imported, summary.imported_instances, summary.accepted) == (1, 2, 0)
    assert (summary.rounds, summary.next_round, summary.idle_rounds) == (5, 5, 2)
    assert summary.rejected == {"too_short": 4}


def test_opening_a_run_reads_its_log_twice(tmp_path, scripted_backend, log_reads):
    """Reopening a finished run: the damage scan, then one pass that replays its instructions
    and rebuilds the pool and the summary (it was seven passes: one per count, then three)."""
    config = PipelineConfig(**OPTIONS)
    first = list(Pipeline(config, tmp_path / "run", backend=scripted_backend, progress=False))
    log_reads.clear()
    again = list(Pipeline(config, tmp_path / "run", backend=scripted_backend, progress=False))
    assert again == first and len(first) == 10
    assert log_reads == [tmp_path / "run" / LOG_FILE] * 2


def test_an_export_replays_the_log_once_for_all_configurations(
    tmp_path, scripted_backend, log_reads
):
    """Exporting a finished run again: the damage scan, then one replay for the three
    configurations that also counts the funnel and usage (it was 23 passes, then 4); the rows
    equal those each configuration's builder makes alone from the log."""
    config = _finished_run(tmp_path / "out", scripted_backend)
    log_reads.clear()
    result = run_to_folder(config, tmp_path / "out", command="test")
    assert log_reads == [tmp_path / "out" / RUN_DIR / LOG_FILE] * 2
    assert result.funnel == summarize(read_log(tmp_path / "out" / RUN_DIR), 10).funnel()
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


def _pipeline(run_dir: Path, backend, **options) -> tuple[Pipeline, list[dict]]:
    config = PipelineConfig(**{**OPTIONS, **options})
    pipeline = Pipeline(config, run_dir, backend=backend, progress=False)
    return pipeline, list(pipeline)


def _assert_live_summary_is_the_logs(pipeline: Pipeline) -> None:
    """The counts kept while the run replayed and generated are those of its log, read alone."""
    assert pipeline.summary == summarize(
        read_log(pipeline.log.dir), pipeline.config.num_instructions
    )


def test_live_summary_of_a_run_with_rejections(tmp_path, scripted_backend):
    pipeline, accepted = _pipeline(tmp_path / "run", scripted_backend)
    _assert_live_summary_is_the_logs(pipeline)
    assert pipeline.summary.rejected["too_short"] > 0 and pipeline.summary.usage["requests"] > 0
    assert len(accepted) == 10 < pipeline.summary.accepted  # the last round's surplus


def test_live_summary_of_a_resumed_run(tmp_path, scripted_backend):
    """A run stopped after 5 instructions, with a torn round at the end of its log, resumed to
    10: the summary counts the replayed rounds and the generated ones as one log."""
    from self_instruct.testing.scripted_backend import ScriptedBackend

    stopped, _ = _pipeline(tmp_path / "run", ScriptedBackend(), num_instructions=5)
    with (tmp_path / "run" / LOG_FILE).open("a") as f:
        f.write('{"type": "rejected", "round": 99, "text": "x", "reason": "too_short"}\n{"ty')
    pipeline, accepted = _pipeline(tmp_path / "run", scripted_backend)
    _assert_live_summary_is_the_logs(pipeline)
    assert len(accepted) == 10 and pipeline.summary.rounds > stopped.summary.rounds > 0


def test_live_summary_of_an_imported_run(tmp_path, scripted_backend):
    """--resume-from an earlier output folder: its rows are logged as the first round and
    replayed from memory; they count as imported, outside the quota."""
    from self_instruct.testing.scripted_backend import ScriptedBackend

    _finished_run(tmp_path / "v1", ScriptedBackend())
    pipeline, accepted = _pipeline(
        tmp_path / "run", scripted_backend, num_instructions=4, resume_from=str(tmp_path / "v1")
    )
    _assert_live_summary_is_the_logs(pipeline)
    assert pipeline.summary.imported == 10 and pipeline.summary.kept == 4
    assert len(accepted) == 14 and all("imported_from" in r for r in accepted[:10])


@pytest.mark.parametrize("num_instructions", [10, 6])
def test_live_summary_of_a_replayed_run(tmp_path, scripted_backend, num_instructions):
    """A finished run replayed, asked again for its 10 instructions or for fewer: the replay
    passes on only the first ones, yet counts the whole log (the surplus as beyond_quota)."""
    first, generated = _pipeline(tmp_path / "run", scripted_backend)
    calls = len(scripted_backend.calls)
    pipeline, replayed = _pipeline(
        tmp_path / "run", scripted_backend, num_instructions=num_instructions
    )
    assert len(scripted_backend.calls) == calls  # nothing generated
    assert replayed == generated[:num_instructions]
    _assert_live_summary_is_the_logs(pipeline)
    assert pipeline.summary.accepted == first.summary.accepted > 10
    beyond = pipeline.summary.funnel()["instructions"]["rejected"]["beyond_quota"]
    assert beyond == first.summary.accepted - num_instructions


def test_a_new_run_grown_from_a_folder_never_reads_its_rounds_back(
    tmp_path, scripted_backend, log_reads
):
    """--resume-from into a new folder: the one read is that of the new log's header alone;
    the imported round is replayed from memory and the new rounds are counted as they commit,
    so the export's funnel (the same as the log's, read alone) read no round back (it read the
    log three times)."""
    from self_instruct.testing.scripted_backend import ScriptedBackend

    _finished_run(tmp_path / "v1", ScriptedBackend())
    log_reads.clear()
    config = PipelineConfig(**{**OPTIONS, "num_instructions": 4}, resume_from=str(tmp_path / "v1"))
    result = run_to_folder(config, tmp_path / "v2", command="test", backend=scripted_backend)
    assert log_reads == [tmp_path / "v2" / RUN_DIR / LOG_FILE]
    assert result.funnel == summarize(read_log(tmp_path / "v2" / RUN_DIR), 4).funnel()
    assert result.funnel["instructions"]["imported"] == 10 and result.num_rows["instructions"] == 14
