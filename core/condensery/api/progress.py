"""Progress: a bar on a terminal, a status line at most every 30 s in a log, nothing with ``--quiet``.

When stderr is not a terminal (a batch job, ``nohup``, CI), a bar would fill the log with
carriage returns, so long loops print one plain line instead, at most every
``CONDENSERY_PROGRESS_EVERY`` seconds (default 30): the step, the rate and the last loss
a component logged (``RunContext.log`` records it here).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["say", "set_quiet"]

T = TypeVar("T")

_QUIET = False
#: the last metrics logged by ``RunContext.log``: stage, step and values
_LAST: dict[str, Any] = {}


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def note_metrics(stage: str, step: int, metrics: dict[str, float]) -> None:
    """Remember the latest logged metrics for the next progress line."""
    count = _LAST.get("count", 0) + 1
    _LAST.clear()
    _LAST.update(stage=stage, step=step, metrics=dict(metrics), count=count)


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("CONDENSERY_PROGRESS_EVERY", "30")))
    except ValueError:
        return 30.0


def _log_lines(iterable: Iterable[T], desc: str, total: int | None) -> Iterator[T]:
    every, start = _interval(), time.monotonic()
    last_line, logged_before = start, _LAST.get("count", 0)  # a loss logged before this loop is another loop's
    for i, item in enumerate(iterable):
        yield item
        now = time.monotonic()
        done = i + 1
        if now - last_line >= every:
            last_line = now
            rate = done / max(now - start, 1e-9)
            line = f"  {desc}: {done}" + (f"/{total}" if total else "") + f" steps, {rate:.3g} steps/s"
            metrics = (_LAST.get("metrics") or {}) if _LAST.get("count", 0) > logged_before else {}
            loss = next((v for k, v in metrics.items() if "loss" in k), None)
            if loss is not None:
                line += f", {_LAST['stage']} loss {loss:.5g} at step {_LAST['step']}"
            print(line, file=sys.stderr, flush=True)


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, leave: bool = False) -> Iterator[T]:
    """Wrap a long loop: a tqdm bar on a terminal, periodic log lines otherwise, nothing when quiet."""
    if _QUIET:
        return iter(iterable)
    if not sys.stderr.isatty():
        return _log_lines(iterable, desc, total if total is not None else _len(iterable))
    from tqdm.auto import tqdm

    return iter(tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True))


def _len(iterable: Iterable[Any]) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def say(message: str) -> None:
    """One status line on stderr unless quiet by flag (still printed when piped)."""
    if not _QUIET:
        print(message, file=sys.stderr, flush=True)
