"""`generate --help` in short groups, every option in exactly one, and the README's option table
in the same groups and order.

The help is read from a real `self-instruct generate --help` in a subprocess; the group lists
from builder/cli/options.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest

from self_instruct.cli.args import make_parser, parse
from self_instruct.cli.generate import GenerateArguments
from self_instruct.cli.options import GENERATE_OPTIONS, OptionGroup
from self_instruct.config import PipelineConfig
from self_instruct.utils.ranges import flag

ROOT = Path(__file__).resolve().parents[2]
FLAG = re.compile(r"^  (--[a-z][a-z-]*)", re.M)


def every_option() -> list[str]:
    names = [f.name for dtype in (PipelineConfig, GenerateArguments) for f in fields(dtype)]
    return [*names, "config"]


@pytest.fixture(scope="module")
def help_text() -> str:
    return subprocess.run(
        [sys.executable, "-m", "self_instruct.cli", "generate", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def sections(text: str) -> dict[str, str]:
    """`title:` at the start of a line, then everything up to the next blank-line-and-title."""
    parts = re.split(r"^([a-z][^\n]*):\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_option_is_in_exactly_one_group():
    named = [name for group in GENERATE_OPTIONS for name in group.names]
    assert len(named) == len(set(named)), "an option in two groups"
    assert sorted(named) == sorted(every_option())


def test_groups_are_short():
    assert all(1 <= len(group.names) <= 9 for group in GENERATE_OPTIONS)


def test_help_shows_the_groups_in_order_with_their_options(help_text):
    shown = sections(help_text)
    titles = [group.title for group in GENERATE_OPTIONS]
    assert [t for t in shown if t in titles] == titles
    for group in GENERATE_OPTIONS:
        flags = FLAG.findall(shown[group.title])
        expected = [flag(name) for name in group.names]
        assert [f for f in flags if not f.startswith("--no-")] == expected, group.title
    assert "other options" not in shown
    assert help_text.startswith("usage: self-instruct generate [options]\n")
    assert shown["help"].split()[:2] == ["-h,", "--help"] and FLAG.findall(shown["help"]) == [
        "--version"
    ]


def readme_tables() -> dict[str, list[list[str]]]:
    """The README's option table: `### title` -> its rows, cells stripped of backticks."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Options of `generate`\n", 1)[1].split("\n## ", 1)[0]
    tables = {}
    for block in section.split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        rows = [line.split(" | ") for line in body.splitlines() if line.startswith("| `--")]
        tables[title] = [[cell.strip("|` ") for cell in row] for row in rows]
    return tables


# Defaults that the options resolve at run time, which the README's table says in words.
RESOLVED_LATER = {"batch_size", "sample_lag", "model_revision"}


def shown(default) -> str:
    """A default as the table writes it: on/off for switches, none for nothing."""
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default) if default not in (None, []) else "none"


def test_readme_option_table_has_the_same_groups_and_defaults():
    tables = readme_tables()
    assert list(tables) == [group.title for group in GENERATE_OPTIONS]
    defaults = {**vars(PipelineConfig()), **vars(GenerateArguments()), "config": None}
    for group in GENERATE_OPTIONS:
        assert [row[0] for row in tables[group.title]] == [flag(n) for n in group.names]
        for name, row in zip(group.names, tables[group.title], strict=True):
            if name not in RESOLVED_LATER:
                assert row[1] == shown(defaults[name]), f"README: {flag(name)} {row[1]}"


def test_help_shows_defaults_and_switches_plainly(help_text):
    flat = " ".join(help_text.split())
    assert "--num-instructions N Stop once" in flat and "(default: 100)" in flat
    assert "--temperature X " in flat and "(default: 0.7)" in flat
    assert "--chat Prompt a chat" in flat and "[CHAT]" not in flat
    assert "--no-sft-include-seed-tasks Turns --sft-include-seed-tasks off." in flat


@dataclass
class Small:
    alpha: int = field(default=1, metadata={"help": "First."})
    beta: bool = field(default=True, metadata={"help": "Second."})
    gamma: str = field(default="g", metadata={"help": "Third."})


def small_parser(*groups: OptionGroup):
    return make_parser((Small,), "small", "A test parser.", groups=groups)


def test_an_option_no_group_names_is_shown_under_other_options():
    parser = small_parser(OptionGroup("first", "The first.", ("beta", "alpha")))
    shown = sections(parser.format_help())
    assert FLAG.findall(shown["first"]) == ["--beta", "--no-beta", "--alpha"]
    assert FLAG.findall(shown["other options"]) == ["--gamma"]
    (small,), given = parse(parser, ["--no-beta", "--alpha", "3"])  # parsing is unchanged
    assert (small.alpha, small.beta, small.gamma) == (3, False, "g")
    assert given == {"alpha": 3, "beta": False}


@pytest.mark.parametrize("names", [("alpha", "alpha"), ("alpha", "delta")])
def test_a_group_naming_an_option_twice_or_one_that_does_not_exist_is_refused(names):
    with pytest.raises(ValueError, match="unknown or repeated options"):
        small_parser(OptionGroup("first", "The first.", names))
