"""Progress bars that stay quiet when output is not a terminal or with ``--quiet``."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_QUIET = False


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    return _QUIET or not sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, leave: bool = False) -> Iterator[T]:
    """Wrap a long loop in a progress bar (disabled when quiet)."""
    return iter(tqdm(iterable, desc=desc, total=total, leave=leave, disable=is_quiet(), dynamic_ncols=True))


def say(message: str) -> None:
    """One status line on stderr unless quiet by flag (still printed when piped)."""
    if not _QUIET:
        print(message, file=sys.stderr, flush=True)
