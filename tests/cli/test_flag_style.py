"""One flag style: every text a user reads spells flags with dashes; both spellings parse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from script_modules import SCRIPTS, load_script

ROOT = Path(__file__).resolve().parents[2]
# A flag spelled with an underscore: `--num_instructions`, not `--num-instructions`.
UNDERSCORE_FLAG = re.compile(r"(?<![\w-])--[a-z0-9]+(?:_[a-z0-9]+)+")
# What users read: the README and docs/, the Makefile's commands, the package's and the scripts'
# strings (help, messages, docstrings), their recipes and the card templates. Tests are left out:
# they type underscore flags on purpose, to check that that spelling still parses.
PATTERNS = (
    "docs/*.md",
    "builder/**/*.py",
    "builder/**/*.yaml",
    "builder/**/*.md",
    "dataset_card/*",
    "scripts/**/*",
)
# Files that type other programs' flags, as those programs spell them: the paper's scripts and
# Stanford Alpaca's, run unchanged by the pipeline benchmark.
OTHER_PROGRAMS_FLAGS = {"scripts/bench_runs.py"}
OTHER_PROGRAMS_LINE = "# theirs"  # a line typing one flag of another program (llama_cpp.server)
# Every script with a parser, found rather than listed: a new one cannot slip past the check.
SCRIPTS_WITH_PARSERS = sorted(
    p.stem for p in (ROOT / "scripts").glob("*.py") if "def make_parser(" in p.read_text()
)


def user_facing_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "setup.cfg"]
    files += [p for pattern in PATTERNS for p in ROOT.glob(pattern) if p.is_file()]
    files = [p for p in files if str(p.relative_to(ROOT)) not in OTHER_PROGRAMS_FLAGS]
    return sorted(p for p in files if p.suffix != ".pyc")


def test_user_facing_text_spells_flags_with_dashes():
    """A line may name the underscore spelling only beside the dashed one, to say both parse."""
    found = []
    for path in user_facing_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.rstrip().endswith(OTHER_PROGRAMS_LINE):
                continue
            for flag in UNDERSCORE_FLAG.findall(line):
                if flag.replace("_", "-") not in line:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {flag}")
    assert not found, "spell these flags with dashes:\n" + "\n".join(found)


@pytest.mark.parametrize("name", SCRIPTS_WITH_PARSERS)
def test_a_script_shows_its_flags_with_dashes(name):
    usage = load_script(name).make_parser(f"{name}.py").format_usage()
    flags = re.findall(r"--[\w-]+", usage)
    assert flags and not [f for f in flags if "_" in f], usage


def test_the_sft_script_parses_both_spellings_alike():
    parser = load_script("sft").make_parser("sft.py")
    recipe = str(SCRIPTS / "recipes" / "smollm2_cpu.yaml")
    dashed = ["--max-steps", "3", "--dataset-name", "a/b", "--use-peft", "--lora-r", "4"]
    underscored = ["--max_steps", "3", "--dataset_name", "a/b", "--use_peft", "--lora_r", "4"]
    one = parser.parse_args_and_config(["--config", recipe, *dashed])
    other = parser.parse_args_and_config(["--config", recipe, *underscored])
    assert one[0] == other[0] and one[2] == other[2]
    assert one[1].max_steps == other[1].max_steps == 3
    assert (one[0].dataset_name, one[2].use_peft, one[2].lora_r) == ("a/b", True, 4)
    assert "usage: sft.py" in parser.format_usage() and "--use-peft" in parser.format_help()


# What a script needs on top of an abbreviated flag to get as far as judging it.
REQUIRED = {"paper_templates": ["templates.json", "--output", "out.yaml"]}


def an_abbreviation(usage: str) -> str:
    """The script's longest flag less its last letter: unambiguous, so argparse's default
    (allow_abbrev=True) would take it for the flag."""
    return max(re.findall(r"--[a-z][a-z-]+", usage), key=len)[:-1]


@pytest.mark.parametrize("name", SCRIPTS_WITH_PARSERS)
def test_a_script_refuses_an_abbreviated_flag(name):
    """As the CLI does: `--output-d` is an unknown flag, never a silent `--output-dir`."""
    parser = load_script(name).make_parser(f"{name}.py")
    abbreviated = an_abbreviation(parser.format_usage())
    _, unknown = parser.parse_known_args([*REQUIRED.get(name, []), abbreviated, "1"])
    assert abbreviated in unknown


@pytest.mark.parametrize("name", SCRIPTS_WITH_PARSERS)
def test_a_script_run_shows_dashes_and_refuses_an_abbreviation(name):
    """The script as a user runs it: --help shows only dashed flags; an abbreviation ends it
    with a usage error (exit 2) before it does anything."""
    script = str(SCRIPTS / f"{name}.py")
    shown = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.startswith(f"usage: {name}.py"), shown.stderr
    usage = shown.stdout.split("\n\n", 1)[0]
    flags = re.findall(r"--[\w-]+", usage) + re.findall(r"^ +(--[\w-]+)", shown.stdout, re.M)
    # The flags themselves, not the help text: TRL's mentions `--attn_implementation=...`.
    assert flags and not [f for f in flags if "_" in f], shown.stdout
    abbreviated = an_abbreviation(usage)
    argv = [sys.executable, script, *REQUIRED.get(name, []), abbreviated, "1"]
    refused = subprocess.run(argv, capture_output=True, text=True)
    assert refused.returncode == 2, refused.stderr
    assert f"unrecognized arguments: {abbreviated} 1" in refused.stderr
