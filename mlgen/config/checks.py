"""One style for every config value check: `key=value is invalid: rule. Fix: how.`

Checks run where a value is first used (a constructor), so a bad value stops the run before any
training, and the message names the config key the user typed. Numbers must be finite: `inf` and
`nan` pass most comparisons by accident (`inf > 0`), so they are refused here once for all keys.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from mlgen.errors import ConfigError


def require(ok: bool, key: str, value: Any, rule: str, fix: str) -> None:
    """Raise `ConfigError` naming `key=value`, the rule it breaks and the fix, unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {rule}. Fix: {fix}.")


def is_int(value: Any) -> bool:
    """An integer that is not a bool (YAML's `true` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_int(key: str, value: Any, low: int = 1, example: int | None = None) -> None:
    """An integer >= `low`."""
    require(is_int(value) and value >= low, key, value, f"it must be an integer >= {low}",
            f"set {key}={example if example is not None else max(low, 1)}")


def check_positive_int(key: str, value: Any) -> None:
    """Counts such as `batch_size=0` are rejected at construction."""
    require(is_int(value) and value >= 1, key, value, "it must be a positive integer", f"set {key}=64 (or any integer >= 1)")


def check_number(key: str, value: Any, low: float | None = None, low_open: bool = False,
                 high: float | None = None, high_open: bool = False, example: float | None = None) -> None:
    """A finite number within [low, high] (ends open where asked)."""
    ok = is_finite_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if low is None and high is None:
        rule = "it must be a finite number"
    else:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        rule = f"it must be a finite number in {'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    require(ok, key, value, rule, f"set e.g. {key}={example if example is not None else (low if low is not None else 0)}")


def check_fraction(key: str, value: Any, low_open: bool, high_closed: bool) -> None:
    """A share in [0, 1] with the given ends open or closed."""
    check_number(key, value, 0.0, low_open, 1.0, not high_closed, example=0.1)


def check_choice(key: str, value: Any, choices: Collection[Any]) -> None:
    require(value in choices, key, value, f"it must be one of {list(choices)}", f"use one of {list(choices)}")
