"""The values a numeric option accepts, declared beside the option, and the check that reads them.

A field of an options dataclass carries `metadata={"range": Range(...)}` (config.py's `_opt(...,
range=...)`); `check_ranges` then refuses, in one message naming the option, the value and the
range, anything else: a value of the wrong kind (`1.5` or `true` for a count, as a --config YAML
can give), nan or inf (no option means anything by them), or a number out of bounds. The CLI's
parser shows the same range in --help (cli/args.py), so the text and the check cannot drift.
"""

from __future__ import annotations

import functools
import math
import typing
from dataclasses import dataclass, fields
from typing import Any

from self_instruct.errors import ConfigError

RANGE = "range"  # the metadata key


def flag(name: str) -> str:
    """An option as every user-facing text spells it: `num_instructions` -> `--num-instructions`."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric option (None: unbounded); `open_low` leaves `low` itself out."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def __str__(self) -> str:
        """'>= 1', '> 0', 'in [0, 1]', 'in (0, 1]'; '' when unbounded."""
        if self.high is None:
            return "" if self.low is None else f"{'>' if self.open_low else '>='} {self.low:g}"
        if self.low is None:
            return f"<= {self.high:g}"
        return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}]"

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high


# The ranges options share.
COUNT = Range(1)  # how many of something: at least one
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, open_low=True)
ANY = Range()  # any finite number of the field's kind


def check_ranges(options: Any) -> None:
    """Raise ConfigError for the first field of the dataclass `options` outside its Range."""
    kinds = _numeric_kinds(type(options))
    for field in fields(options):
        if (allowed := field.metadata.get(RANGE)) is None:
            continue
        kind, optional = kinds[field.name]
        check_value(flag(field.name), getattr(options, field.name), kind, allowed, optional)


def check_value(name: str, value: Any, kind: type, allowed: Range, optional: bool = False) -> None:
    """Raise ConfigError, naming `name` (a flag, or an environment variable), unless `value` is
    a finite `kind` in `allowed` (or None, if `optional`)."""
    if problem := _problem(value, kind, optional, allowed):
        raise ConfigError(f"{name} must be {problem}")


def _problem(value: Any, kind: type, optional: bool, allowed: Range) -> str | None:
    """What is wrong with `value` ('an integer >= 1, got 1.5'), or None when nothing is."""
    if value is None and optional:
        return None
    bounds = f" {allowed}" if str(allowed) else ""
    if isinstance(value, bool) or not isinstance(value, int if kind is int else (int, float)):
        return f"{'an integer' if kind is int else 'a number'}{bounds}, got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"a finite number{bounds}, got {value!r}"
    return None if value in allowed else f"{allowed}, got {value!r}"


@functools.cache
def _numeric_kinds(options_type: type) -> dict[str, tuple[type, bool]]:
    """Each int or float field's (kind, may be None), read from the annotations."""
    kinds = {}
    for name, hint in typing.get_type_hints(options_type).items():
        for kind in (int, float):
            if hint in (kind, kind | None):
                kinds[name] = (kind, hint != kind)
    return kinds
