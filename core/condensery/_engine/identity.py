"""Run-directory identity and its lock: a directory holds one recipe's run, written by one run.

Reusing a directory whose recipe differs would report another run's results (a finished
one) or mix two runs (an unfinished one), so every difference that can change a number is
refused before anything is read from or written to the directory. Two runs writing into the
same directory at once would interleave their files, so the main process holds an exclusive
``flock`` on ``.lock`` for the whole run; the kernel releases it when the holder dies, so a
lock left by a killed run is simply taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..api.errors import UserError

#: runtime settings that change speed or bookkeeping (where logs go), never a number
SPEED_ONLY = ("threads", "checkpoint_every", "log_with")
LOCK_NAME = ".lock"


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def recipe_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key old -> new`` for every setting where two resolved recipes differ (speed-only runtime aside)."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                if path == "runtime" and k in SPEED_ONLY:
                    continue
                walk(a.get(k, "(unset)"), b.get(k, "(unset)"), f"{path}.{k}" if path else str(k))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            out.append(f"{path} {_short(a)} -> {_short(b)}")

    walk(_plain(old), _plain(new), "")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def stored_recipe(run_dir: Path, registry: Any) -> dict[str, Any] | None:
    """The run directory's ``recipe.yaml`` resolved again with today's defaults (None if absent).

    Resolving again means a run written before an option existed counts as using its
    default, as ``condensery report`` does. A recipe that no longer resolves is compared as
    written; one that cannot be read at all is a one-line error.
    """
    path = run_dir / "recipe.yaml"
    if not path.is_file():
        return None
    from .strict_yaml import YAMLProblem, read_yaml

    try:
        doc = read_yaml(path)
    except (YAMLProblem, OSError) as exc:
        why = f"cannot be read ({exc.strerror})" if isinstance(exc, OSError) else str(exc)
        raise UserError(f"'{path}' {why}; pass --force to start over there, or choose another -o") from None
    if not isinstance(doc, dict):
        raise UserError(f"'{path}' is not a recipe; pass --force to start over there, or choose another -o")
    from .recipe import resolve

    try:
        return resolve(dict(doc), registry, needs_synthesizer="synthesizer" in doc).resolved
    except UserError:
        return doc


def check_identity(run_dir: Path, resolved: dict[str, Any], registry: Any, force: bool) -> bool:
    """Whether ``run_dir`` holds a *finished* run of this very recipe (to reuse as it is).

    Commands call it through ``condensery.outputs.check_run_identity``, which applies the
    write rule first. A directory holding another recipe's run, finished or not, or run files without a
    recipe, is refused in one line naming the differing keys and the two ways out; with
    ``force`` nothing is checked (the run starts over there).
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"-o {run_dir} is a file, not a directory; choose another -o")
    if force or not run_dir.exists():
        return False
    old = stored_recipe(run_dir, registry)
    finished = (run_dir / "metrics.json").is_file()
    if old is None:
        leftovers = [n for n in ("metrics.json", "synthetic.safetensors", "checkpoints") if (run_dir / n).exists()]
        if leftovers:
            raise UserError(f"{run_dir} holds {', '.join(leftovers)} but no recipe.yaml, so what it holds is unknown; "
                            "pass --force to start over there, or choose another -o")
        return False
    diffs = recipe_differences(old, resolved)
    if diffs:
        state = "a finished" if finished else "an unfinished"
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise UserError(f"{run_dir} holds {state} run of a different recipe ({shown}); "
                        "pass --force to start over there, or choose another -o")
    return finished


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
        return f"pid {info['pid']} on {info['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def run_lock(run_dir: Path, take: bool = True) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` (only the main process of a run takes it)."""
    if not take:
        yield
        return
    import fcntl

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the run directory {run_dir} ({exc.strerror}); choose another -o") from None
    path = run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot write to the run directory {run_dir} ({exc.strerror}); choose another -o") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{run_dir} is in use by another run ({_holder(path)}); wait for it to finish, "
                            "or choose another -o") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
        os.fsync(fd)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (a later run overwrites it)
