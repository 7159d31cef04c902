"""One process per output folder: a second `generate` or `push` is refused at once, by name.

Two real CLI processes (tests/_crash.py, the scripted backend slowed so that the first is still
running); the lock dies with its holder, `kill -9` included.
"""

from __future__ import annotations

import json
import signal

from _crash import LOG, count_rounds, launch, refused, run_cli, wait_for_rounds

from self_instruct.layout import RUN_DIR
from self_instruct.runlog import read_log

ARGS = ["generate", "--num-instructions", "200", "--batch-size", "2", "--seed", "3"]
PAUSED = {"SI_TEST_DELAY": "0.3"}  # seconds per backend call: the first run outlives the test


def test_second_process_on_a_running_folder_is_refused(tmp_path):
    folder = tmp_path / "out"
    first = launch([*ARGS, "--output", str(folder)], PAUSED)
    try:
        assert wait_for_rounds(folder, 1, first)
        holder = f"{folder} is in use by another self-instruct process (pid {first.pid} on "
        for extra in (["--resume"], ["--overwrite"]):
            stderr = refused([*ARGS, "--output", str(folder), *extra], "generate")
            assert holder in stderr
        assert holder in refused(["push", str(folder), "me/data"], "push")
        assert first.poll() is None and (folder / LOG).exists()  # --overwrite deleted nothing
        rounds = count_rounds(folder)
        assert wait_for_rounds(folder, rounds + 1, first)  # and the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    # The kernel dropped the lock with its holder: the folder can be resumed at once.
    done = run_cli([*ARGS, "--num-instructions", "4", "--output", str(folder), "--resume"])
    assert done.returncode == 0, done.stderr
    markers = [r["round"] for r in read_log(folder / RUN_DIR) if r["type"] == "round"]
    assert markers == list(range(len(markers)))  # one writer: no round twice, none interleaved


def test_lock_file_names_its_holder_only_while_held(tmp_path):
    folder = tmp_path / "out"
    first = launch([*ARGS, "--output", str(folder)], PAUSED)
    try:
        assert wait_for_rounds(folder, 1, first)
        holder = json.loads((folder / RUN_DIR / "lock").read_text())
        assert holder["pid"] == first.pid
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert (folder / RUN_DIR / "lock").read_text() == ""
