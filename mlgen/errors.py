"""User-facing errors: one paragraph naming the bad value and the fix, never a traceback."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Exit code for bad user input (config, paths, checkpoints); 1 stays for real crashes.
USER_ERROR_EXIT_CODE = 2


class MLGenError(Exception):
    """An error the user can fix; its message says what was wrong and how to fix it."""


class ConfigError(MLGenError, ValueError):
    """A config value is invalid."""


class DataError(MLGenError, FileNotFoundError):
    """A dataset is missing or malformed."""


class CheckpointError(MLGenError):
    """A checkpoint path is missing or unreadable."""


def exit_on_user_error(func: F) -> F:
    """Turn an `MLGenError` raised inside an entry point into a short message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MLGenError as err:
            from rich.console import Console
            from rich.text import Text

            message = Text("mlgen error: ", style="bold red") + Text(str(err))
            Console(stderr=True, soft_wrap=True).print(message)
            sys.exit(USER_ERROR_EXIT_CODE)

    return wrapper  # type: ignore[return-value]
