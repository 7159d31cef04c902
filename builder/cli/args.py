"""Command-line options: dataclass fields as flags, spelled with dashes, parsed strictly.

`transformers.HfArgumentParser` turns each dataclass field into a flag that carries the field's
help text and real default, and accepts both `--num-instructions` and `--num_instructions`. On
top of it, this module makes the command line predictable:

- only the dash spelling is shown (usage, help, argparse's own errors); the other still parses;
- no abbreviations: `--over` is an unknown flag, never a silent `--overwrite`;
- an unknown flag is a usage error (exit 2), not a traceback;
- the fields named in `positional` are positional arguments (`push FOLDER REPO_ID`);
- a number's declared range (utils/ranges.py) ends its help text: "Must be >= 1.";
- with `config_file=True`, `--config run.yaml` (keys named like the options, with dashes or
  underscores) gives values, and the flags on the command line override it, as in TRL's scripts;
- with `groups`, `--help` shows the options in those groups and order, under a one-line usage;
- `parse` also says which options were given (in the file or on the command line), so that
  `--resume` can tell a retyped option from a default.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from self_instruct.about import __version__
from self_instruct.cli.options import OptionGroup
from self_instruct.utils.ranges import RANGE, flag

_METAVARS = {int: "N", float: "X"}


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows every option's default; a switch is shown as
    `--chat`, not `--chat [CHAT]`, and numbers as N or X, so most flags fit beside their help."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if _is_switch(action):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return _METAVARS.get(action.type, action.dest.upper())


def _is_switch(action: argparse.Action) -> bool:
    """A boolean field's flag: HfArgumentParser lets `--chat` take an optional true/false."""
    return action.nargs == argparse.OPTIONAL and action.const is True


def make_parser(
    dataclass_types: tuple[type, ...],
    prog: str,
    description: str,
    epilog: str | None = None,
    *,
    positional: Sequence[str] = (),
    config_file: bool = False,
    groups: Sequence[OptionGroup] = (),
) -> argparse.ArgumentParser:
    """An `HfArgumentParser` over `dataclass_types`, made strict as the module docstring says."""
    from transformers import HfArgumentParser

    class Parser(HfArgumentParser):
        @staticmethod
        def _parse_dataclass_field(parser, field):
            if field.name not in positional:
                return HfArgumentParser._parse_dataclass_field(parser, _for_argparse(field))
            parser.add_argument(field.name, metavar=field.name.upper(), help=field.metadata["help"])

    parser = Parser(
        dataclass_types,
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
        allow_abbrev=False,
        usage="%(prog)s [options]" if groups else None,
    )
    if config_file:
        parser.add_argument(
            "--config",
            metavar="YAML",
            help="A YAML file of options, keys named like the flags (num-instructions: 200); "
            "flags given on the command line override it.",
        )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    if groups:
        _show_in_groups(parser, groups)
    return show_dashes(parser)


def _for_argparse(field: dataclasses.Field) -> dataclasses.Field:
    """`field` as HfArgumentParser reads it (it passes the metadata to `add_argument`): without
    our `range` key, which ends the help text instead."""
    metadata = dict(field.metadata)
    if (allowed := metadata.pop(RANGE, None)) is None:
        return field
    if str(allowed):
        metadata["help"] = f"{metadata['help']} Must be {allowed}."
    field = copy.copy(field)
    field.metadata = MappingProxyType(metadata)
    return field


def _show_in_groups(parser: argparse.ArgumentParser, groups: Sequence[OptionGroup]) -> None:
    """Move each option's help into its group, in the group's order; -h and --version last.

    Only the layout of `--help` changes: argparse parses from `parser._actions`, whose order
    and content stay. An option no group names is shown under "other options", and a test
    holds every group list to naming each option exactly once.
    """
    by_name: dict[str, list[argparse.Action]] = {}
    for action in parser._optionals._group_actions:
        if action.dest in by_name:  # `--no-x` after `--x`, with the same help: say what it does
            action.help, action.default = f"Turns {flag(action.dest)} off.", argparse.SUPPRESS
        by_name.setdefault(action.dest, []).append(action)
    named = [name for group in groups for name in group.names]
    if wrong := sorted({n for n in named if n not in by_name or named.count(n) > 1}):
        raise ValueError(f"help groups name unknown or repeated options: {wrong}")
    for group in groups:
        shown = parser.add_argument_group(group.title, group.description)
        shown._group_actions.extend(a for name in group.names for a in by_name.pop(name))
    own = [a for name in ("help", "version") for a in by_name.pop(name)]
    if others := [a for actions in by_name.values() for a in actions]:
        parser.add_argument_group("other options")._group_actions.extend(others)
    parser._optionals._group_actions[:] = own
    parser._optionals.title = "help"
    parser._action_groups.remove(parser._optionals)
    parser._action_groups.append(parser._optionals)


def show_dashes(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Show each flag with dashes only (usage, help, argparse's errors); every spelling parses.

    `HfArgumentParser` registers `--use_peft` and `--use-peft` for a field `use_peft`. Only the
    text shown changes here: argparse matches a typed flag against the strings registered when
    the argument was added, so the underscore spelling keeps working. Scripts call it too.
    """
    for action in parser._actions:
        dashed = [s for s in action.option_strings if "_" not in s]
        action.option_strings = dashed or action.option_strings
    return parser


def parse(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The dataclass instances for `argv`, and the options it gives (from --config or flags).

    Every field starts as None in the namespace, so argparse fills in no default and what is not
    None afterwards was given: no option of ours can be set to None from a command line.
    """
    names = [f.name for dtype in parser.dataclass_types for f in dataclasses.fields(dtype)]
    namespace = parser.parse_args(list(argv), argparse.Namespace(**dict.fromkeys(names, None)))
    given = {k: v for k, v in vars(namespace).items() if k in names and v is not None}
    if getattr(namespace, "config", None):
        given = {**_read_config(parser, namespace.config, names), **given}
    try:
        return tuple(_build(dtype, given) for dtype in parser.dataclass_types), given
    except TypeError as err:  # a YAML value of the wrong kind reaches a dataclass as is
        parser.error(f"--config {namespace.config}: {err}")


def _build(dtype: type, values: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(dtype)}
    return dtype(**{k: v for k, v in values.items() if k in names})


def _read_config(parser: argparse.ArgumentParser, path: str, names: list[str]) -> dict[str, Any]:
    """The options of a YAML file, keys as field names; a usage error names what is wrong."""
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        parser.error(f"--config {path}: cannot read it ({err.strerror or err})")
    except yaml.YAMLError as err:
        parser.error(f"--config {path}: not valid YAML ({err})")
    if not isinstance(loaded, dict):
        parser.error(f"--config {path}: expected a mapping of options (num-instructions: 200)")
    values = {str(key).replace("-", "_"): value for key, value in loaded.items()}
    if unknown := [key for key in values if key not in names]:
        parser.error(
            f"--config {path}: unknown option(s) {', '.join(map(flag, unknown))} (see --help)"
        )
    return values
