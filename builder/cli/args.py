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
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from self_instruct.about import __version__
from self_instruct.cli.options import OptionGroup
from self_instruct.utils.ranges import RANGE, flag

_METAVARS = {int: "N", float: "X"}


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows every option's default; a switch is shown as
    `--chat`, not `--chat [CHAT]`, so most flags fit beside their help. (argparse has no option
    for a switch that also takes true/false; this one method is the formatter's extension point.)"""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if _is_switch(action):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)


def _is_switch(action: argparse.Action) -> bool:
    """A boolean field's flag: HfArgumentParser lets `--chat` take an optional true/false."""
    return action.nargs == argparse.OPTIONAL and action.const is True


def strict(base: type[argparse.ArgumentParser]) -> type[argparse.ArgumentParser]:
    """`base` (argparse's parser, HfArgumentParser, TRL's TrlParser) in the CLI's flag style.

    The CLI and every script parse alike: no abbreviations (`--output-d` is an unknown flag, never
    a silent `--output-dir`); each flag shown with dashes only; a `--no-x` that HfArgumentParser
    adds after `--x` says what it does instead of repeating `--x`'s help. All of it happens as
    each argument is added, through argparse's public `add_argument` and the Action it returns.
    An unknown flag is a usage error (exit 2), as argparse's own `parse_args` makes it.
    """

    class Strict(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.dests: list[str] = []  # in the order added; before super(), which adds --help
            super().__init__(*args, **{"allow_abbrev": False, **kwargs})

        def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
            return self.added(super().add_argument(*names, **self.before_adding(names, kwargs)))

        def before_adding(self, names: tuple[str, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            """`add_argument`'s keywords, the `--no-x` of a known `--x` told apart."""
            dest = _dest(names, kwargs)
            if dest in self.dests and names[0].startswith("--no"):
                kwargs = {
                    **kwargs,
                    "help": f"Turns {flag(dest)} off.",
                    "default": argparse.SUPPRESS,
                }
            self.dests.append(dest)
            return kwargs

        if hasattr(base, "parse_args_into_dataclasses"):  # HfArgumentParser's, TrlParser's

            def parse_args_into_dataclasses(self, args=None, return_remaining_strings=False, **kw):
                """As HfArgumentParser's, but an unknown flag is argparse's usage error (exit 2),
                before any dataclass is built, not a ValueError's traceback."""
                if not return_remaining_strings:
                    self.parse_args(args)
                return super().parse_args_into_dataclasses(args, return_remaining_strings, **kw)

        @staticmethod
        def added(action: argparse.Action) -> argparse.Action:
            """Show `action` with dashes only; every registered spelling still parses.

            argparse matches a typed flag against the strings registered when the argument was
            added, so `--use_peft` keeps working while usage, help and errors say `--use-peft`.
            """
            dashed = [s for s in action.option_strings if "_" not in s]
            action.option_strings = dashed or action.option_strings
            return action

    Strict.__name__ = Strict.__qualname__ = f"Strict{base.__name__}"
    return Strict


def _dest(names: tuple[str, ...], kwargs: dict[str, Any]) -> str:
    """The attribute an argument fills, as argparse derives it from its first name."""
    return kwargs.get("dest") or names[0].lstrip("-").replace("-", "_")


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
    """A strict `HfArgumentParser` over `dataclass_types`, as the module docstring says."""
    from transformers import HfArgumentParser

    class Parser(strict(HfArgumentParser)):
        """Each field's argument is positional or shown in its help group (added there once
        every field is known, in the group's order); a number's range ends its help text, and
        its metavar is N or X."""

        def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action | None:
            dest = _dest(names, kwargs)
            if dest in positional:
                return super().add_argument(dest, metavar=dest.upper(), help=kwargs["help"])
            if not groups:
                return super().add_argument(*names, **_shown(kwargs))
            self.pending.setdefault(dest, []).append((names, _shown(kwargs)))
            return None  # HfArgumentParser and make_parser never read it

        def add_in_groups(self) -> None:
            """Add the pending arguments group by group; -h and --version last, under "help"."""
            others = OptionGroup("other options", None, tuple(self.pending))  # shown if any left
            for group in (*groups, others):
                shown = self.add_argument_group(group.title, group.description)
                for name in group.names:
                    for args, kwargs in self.pending.pop(name, ()):
                        self.added(shown.add_argument(*args, **self.before_adding(args, kwargs)))
            own = self.add_argument_group("help")
            own.add_argument("-h", "--help", action="help", help="show this help message and exit")
            own.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    Parser.pending = {}  # dest -> its add_argument calls, filled while HfArgumentParser adds
    parser = Parser(
        dataclass_types,
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
        add_help=not groups,
        usage="%(prog)s [options]" if groups else None,
    )
    if config_file:
        parser.add_argument(
            "--config",
            metavar="YAML",
            help="A YAML file of options, keys named like the flags (num-instructions: 200); "
            "flags given on the command line override it.",
        )
    if groups:
        _check_groups(parser.pending, groups)
        parser.add_in_groups()
    else:
        parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _shown(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`add_argument`'s keywords as HfArgumentParser passes them (a field's metadata among them)
    without our `range` key, which ends the help text instead; numbers shown as N or X."""
    kwargs = dict(kwargs)
    if (allowed := kwargs.pop(RANGE, None)) is not None and str(allowed):
        kwargs["help"] = f"{kwargs['help']} Must be {allowed}."
    if kwargs.get("type") in _METAVARS and "choices" not in kwargs:
        kwargs.setdefault("metavar", _METAVARS[kwargs["type"]])
    return kwargs


def _check_groups(dests: Sequence[str], groups: Sequence[OptionGroup]) -> None:
    """Every name in the help groups is an option, named once."""
    named = [name for group in groups for name in group.names]
    if wrong := sorted({n for n in named if n not in dests or named.count(n) > 1}):
        raise ValueError(f"help groups name unknown or repeated options: {wrong}")


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
