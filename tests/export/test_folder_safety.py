"""The output folder holds other people's files too: the tool deletes only what it wrote, and a
push after an export killed mid-publish sends one whole version (issue 13, items 2, 3 and 7);
it writes and deletes nothing through a symbolic link, and takes nothing for its own that its
run directory does not record (issue 23).

The runs are the real CLI in a subprocess (tests/cli_runs.py, scripted backend); the kill is a real
SIGKILL at the rename of the card, the one moment two exports' files sit side by side.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import datasets
import pytest
from cli_runs import data_rows, finished_run_of, launch, refused, run_cli, wait_for_rounds
from huggingface_hub import DatasetCard, HfApi
from local_hub import LocalHub
from test_hub_push import ALICE, REPO, load_rows

from self_instruct.config import PipelineConfig
from self_instruct.errors import OutputFolderError
from self_instruct.export.folder import prepare_output
from self_instruct.hub.push import push_folder
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


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return finished_run_of(RUN, tmp_path_factory.mktemp("exported"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def link_to_theirs(folder: Path, linked: str, theirs: Path) -> Path:
    """Replace `linked` (a glob) in `folder` with a symbolic link to a copy in `theirs` (someone's
    own files, or a second run's), beside a file of theirs; return the link."""
    path = next(folder.glob(linked)) if "*" in linked else folder / linked
    theirs.mkdir()
    (theirs / "keep.txt").write_bytes(b"their own file")
    target = theirs / path.name
    if path.is_dir():
        shutil.copytree(path, target)
        shutil.rmtree(path)
    elif path.exists():
        target.write_bytes(path.read_bytes() or b"their own file")  # an emptied one shows
        path.unlink()
    else:
        target = theirs  # the staging folder: a finished run has none
    path.symlink_to(target)
    return path


LINKED = [
    ".self-instruct",
    ".self-instruct/export",
    ".self-instruct/log.jsonl",
    ".self-instruct/lock",
    ".self-instruct/manifest.json",
    "README.md",
    "data",
    "plots",
    "data/instances-*.parquet",
]


@pytest.mark.parametrize("linked", LINKED)
def test_a_link_where_the_tool_writes_is_refused_and_what_it_reaches_kept(
    exported, tmp_path, linked
):
    out, theirs = tmp_path / "out", tmp_path / "theirs"
    shutil.copytree(exported, out)
    link = link_to_theirs(out, linked, theirs)
    before = snapshot(theirs)
    more = [*RUN[:2], "8", *RUN[3:], "--output", str(out)]
    for extra in (["--resume"], ["--overwrite"]):
        assert f"{link} is a symbolic link" in refused([*more, *extra])
    assert snapshot(theirs) == before and link.is_symlink()


def test_an_output_folder_that_is_itself_a_link_is_the_users_choice(tmp_path):
    (tmp_path / "disk").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "disk")  # an --output on another disk
    assert run_cli([*RUN, "--output", str(tmp_path / "out")]).returncode == 0
    assert datasets.load_dataset(str(tmp_path / "disk"), "instances", split="train")


def test_a_run_directory_that_records_no_run_makes_nothing_ours(tmp_path):
    out = tmp_path / "out"
    (out / ".self-instruct").mkdir(parents=True)
    add_user_files(out)
    (out / "README.md").write_bytes(b"# my own card\n")
    for extra in ([], ["--resume"], ["--overwrite"]):
        stderr = refused([*RUN, "--output", str(out), *extra])
        assert "holds other files, not a Self-Instruct run" in stderr
    assert_user_files_kept(out)
    assert (out / "README.md").read_bytes() == b"# my own card\n"


def test_a_run_directory_holding_only_its_lock_is_an_empty_folder(tmp_path):
    out = tmp_path / "out"
    (out / ".self-instruct").mkdir(parents=True)
    (out / ".self-instruct" / "lock").touch()  # a run killed before it stored its options
    done = run_cli([*RUN, "--output", str(out)])
    assert done.returncode == 0, done.stderr


def test_a_card_the_run_did_not_export_is_never_replaced(tmp_path):
    out = tmp_path / "out"
    first = launch([*RUN[:2], "200", *RUN[3:], "--output", str(out)], {"SI_TEST_DELAY": "0.3"})
    assert wait_for_rounds(out, 1, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    (out / "README.md").write_bytes(b"# my own card\n")  # beside a run that has no export yet
    for extra in (["--resume"], ["--overwrite"]):
        stderr = refused([*RUN, "--output", str(out), *extra])
        assert f"{out / 'README.md'} is not a card this run exported" in stderr
    assert (out / "README.md").read_bytes() == b"# my own card\n"


def test_a_card_put_in_the_folder_during_a_run_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    args = [*RUN[:2], "24", *RUN[3:], "--output", str(out)]
    first = launch(args, {"SI_TEST_DELAY": "0.3"})
    assert wait_for_rounds(out, 1, first)
    (out / "README.md").write_bytes(b"# my own card\n")
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 1 and "Traceback" not in stderr, stderr
    assert f"{out / 'README.md'} is not a file an export of this run wrote" in stderr
    assert (out / "README.md").read_bytes() == b"# my own card\n"
    (out / "README.md").unlink()  # moved away, as the message says: the resume exports
    assert run_cli([*args, "--resume"]).returncode == 0
    assert datasets.load_dataset(str(out), "instances", split="train")


@pytest.mark.parametrize(
    "entry", ["../victim.txt", "VICTIM", ".git/HEAD", "notes.txt", "data/./mine.parquet"]
)
def test_a_manifest_naming_files_no_export_writes_deletes_nothing(exported, tmp_path, entry):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    shutil.copytree(exported, out)
    add_user_files(out)
    victim.write_bytes(b"theirs")
    entry = str(victim) if entry == "VICTIM" else entry
    manifest = out / ".self-instruct" / "manifest.json"
    files = json.loads(manifest.read_text())["files"]
    manifest.write_text(json.dumps({"files": [*files, entry]}))
    before = snapshot(out)
    stderr = refused([*RUN, "--output", str(out), "--overwrite"])
    assert "is not a manifest written by self-instruct" in stderr and repr(entry) in stderr
    assert snapshot(out) == before and victim.read_bytes() == b"theirs"
