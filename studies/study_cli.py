"""The condensery commands a study runs, and what they leave behind.

Studies drive ``condensery run`` / ``eval`` / ``generate`` as a user would, in a fresh
process each, so they depend on the command line and the files it writes (run directories,
``metrics.json``), never on how the engine is arranged inside. A study that needs the
Python API imports only public names (``tests/test_public_imports.py`` checks).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

#: every study shares the machine: one thread per condensery process
ONE_THREAD = ("--set", "runtime.threads=1")


def condensery(*args: str) -> None:
    """Run ``condensery ARGS`` in its own process; a failure stops the study with its one-line error."""
    command = [sys.executable, "-m", "condensery", *args]
    print("+ condensery", " ".join(args), flush=True)
    done = subprocess.run(command)
    if done.returncode:
        sys.exit(f"condensery {args[0]} failed (exit {done.returncode}); its error is printed above")


def sets(*overrides: str) -> list[str]:
    """``--set`` arguments for each ``KEY=VALUE``."""
    return [a for o in overrides for a in ("--set", o)]


def read_metrics(folder: Path) -> dict[str, Any] | None:
    """A finished run's or evaluation's ``metrics.json``, None while it does not exist."""
    path = Path(folder) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def accuracies(metrics: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """(mean, std) of the first evaluator's test accuracy per set role (``synthetic``, ``random``)."""
    out: dict[str, tuple[float, float]] = {}
    for r in metrics["results"]:
        out.setdefault(r["set"], (r["mean"], r["std"]))
    return out
