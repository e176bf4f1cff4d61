"""Writing the run directory: atomic JSON/YAML files (pictures: ``figures``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from .figures import save_grid  # noqa: F401  (the grid's old home)


def write_atomic(path: Path, text: str) -> None:
    """Write text so a reader never sees half a file, even after a crash: temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_yaml(path: Path, data: Any) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))
