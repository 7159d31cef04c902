"""Command-line options: dataclass fields as flags, spelled with dashes, parsed strictly.

`transformers.HfArgumentParser` turns each dataclass field into a flag that carries the field's
help text and real default, and accepts both `--num-instructions` and `--num_instructions`. On
top of it, this module makes the command line predictable:

- only the dash spelling is shown (usage, help, argparse's own errors); the other still parses;
- no abbreviations: `--over` is an unknown flag, never a silent `--overwrite`;
- an unknown flag is a usage error (exit 2), not a traceback;
- the fields named in `positional` are positional arguments (`push FOLDER REPO_ID`);
- a number's declared range (ranges.py) ends its help text: "Must be >= 1.";
- with `config_file=True`, `--config run.yaml` (keys named like the options, with dashes or
  underscores) gives values, and the flags on the command line override it, as in TRL's scripts;
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

from .. import __version__
from ..config import flag
from ..ranges import RANGE


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows every option's default."""


def make_parser(
    dataclass_types: tuple[type, ...],
    prog: str,
    description: str,
    epilog: str | None = None,
    *,
    positional: Sequence[str] = (),
    config_file: bool = False,
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
    )
    if config_file:
        parser.add_argument(
            "--config",
            metavar="YAML",
            help="A YAML file of options, keys named like the flags (num-instructions: 200); "
            "flags given on the command line override it.",
        )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
