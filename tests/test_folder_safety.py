"""The output folder holds other people's files too: the tool deletes only what it wrote, and a
push after an export killed mid-publish sends one whole version (issue 13, items 2, 3 and 7).

The runs are the real CLI in a subprocess (tests/_crash.py, scripted backend); the kill is a real
SIGKILL at the rename of the card, the one moment two exports' files sit side by side.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import datasets
import pytest
from _crash import data_rows, launch, run_cli
from huggingface_hub import DatasetCard, HfApi
from local_hub import LocalHub
from test_hub_push import ALICE, REPO, load_rows

from self_instruct.config import PipelineConfig
from self_instruct.files import OutputFolderError
from self_instruct.hub import push_folder
from self_instruct.output_folder import prepare_output
from self_instruct.run import run_to_folder

RUN = ["generate", "--num-instructions", "4", "--batch-size", "4"]
USER_FILES = {
    ".git/HEAD": b"ref: refs/heads/main\n",
    "notes.txt": b"my notes",
    "checkpoint/model.bin": b"\x00weights",
    "data/mine.parquet": b"not the tool's",
    "plots/mine.png": b"\x89PNG mine",
}


def add_user_files(folder: Path) -> None:
    for relative, content in USER_FILES.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)


def assert_user_files_kept(folder: Path) -> None:
    assert {rel: (folder / rel).read_bytes() for rel in USER_FILES} == USER_FILES


def card_files(folder: Path) -> set[str]:
    """The files the folder's card names: its configurations' data files and its figures."""
    card = DatasetCard.load(folder / "README.md")
    data = {p for config in card.data.configs for f in config["data_files"] for p in f["path"]}
    return data | set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card.text))


def tool_files(folder: Path) -> set[str]:
    """Every file under `folder` but the user's and the run directory's."""
    every = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    return {f for f in every if f not in USER_FILES and not f.startswith(".self-instruct/")}


def test_overwrite_removes_only_the_run_and_says_what(tmp_path):
    out = tmp_path / "out"
    assert run_cli([*RUN, "--output", str(out)]).returncode == 0
    old = card_files(out) | {"README.md"}
    add_user_files(out)

    done = run_cli([*RUN, "--seed", "7", "--output", str(out), "--overwrite"])
    assert done.returncode == 0, done.stderr
    assert_user_files_kept(out)
    (removed,) = [line for line in done.stderr.splitlines() if "--overwrite removed" in line]
    assert removed.endswith(", .self-instruct/")
    assert set(removed.split(": ", 1)[1].split(", ")) == old | {".self-instruct/"}
    assert tool_files(out) == card_files(out) | {"README.md"}  # the new export, nothing older
    assert datasets.load_dataset(str(out), "instances", split="train")


@pytest.fixture
def scripted():
    """Runs to the folder with a fresh scripted backend each."""
    from self_instruct.testing.scripted_backend import ScriptedBackend

    def run(config, folder):
        return run_to_folder(config, folder, command="test", backend=ScriptedBackend())

    return run


def test_export_deletes_only_its_own_stale_shards_and_figures(tmp_path, scripted):
    out = tmp_path / "out"
    prepare_output(out, resume=False, overwrite=False)
    scripted(PipelineConfig(num_instructions=4, batch_size=4), out)
    first = card_files(out)
    add_user_files(out)

    prepare_output(out, resume=True, overwrite=False)
    scripted(PipelineConfig(num_instructions=8, batch_size=4), out)
    assert_user_files_kept(out)
    assert first - card_files(out)  # the first export's shards were replaced...
    assert tool_files(out) == card_files(out) | {"README.md"}  # ...and removed


@pytest.mark.parametrize("manifest", ["{not json", '{"files": "README.md"}', "[]"])
def test_overwrite_with_an_edited_manifest_deletes_nothing(tmp_path, scripted, manifest):
    out = tmp_path / "out"
    prepare_output(out, resume=False, overwrite=False)
    scripted(PipelineConfig(num_instructions=4, batch_size=4), out)
    (out / ".self-instruct" / "manifest.json").write_text(manifest)
    before = sorted(p for p in out.rglob("*"))
    with pytest.raises(OutputFolderError, match="not a manifest written by self-instruct"):
        prepare_output(out, resume=False, overwrite=True)
    assert sorted(p for p in out.rglob("*")) == before


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", users={"alice": ALICE}) as hub:
        yield hub


def test_push_after_an_export_killed_mid_publish_sends_the_old_version_whole(hub, tmp_path):
    out = tmp_path / "out"
    assert run_cli([*RUN, "--output", str(out)]).returncode == 0
    old_files, old_rows = card_files(out), data_rows(out)

    more = [*RUN[:2], "8", *RUN[3:], "--output", str(out), "--resume"]
    killed = launch(more, {"SI_TEST_KILL_AT_RENAME": "README.md"})
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert len(list((out / "data").glob("instances-*.parquet"))) == 2  # both exports' shards

    v1 = push_folder(out, REPO, token=ALICE)
    api = HfApi(token=ALICE)
    pushed = set(api.list_repo_files(REPO, repo_type="dataset", revision=v1.tag))
    assert pushed - {".gitattributes"} == old_files | {"README.md"}
    assert load_rows(REPO, "instances", "v1", tmp_path / "c1", ALICE) == old_rows["instances"]

    assert run_cli(more).returncode == 0  # the resume finishes the new export
    new_files = card_files(out)
    v2 = push_folder(out, REPO, token=ALICE)
    pushed = set(api.list_repo_files(REPO, repo_type="dataset", revision=v2.tag))
    assert pushed - {".gitattributes"} == new_files | {"README.md"}
    assert load_rows(REPO, "instances", "v2", tmp_path / "c2", ALICE) == data_rows(out)["instances"]
