"""Writing the run directory: atomic JSON/YAML files (pictures: ``figures``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..api.files import write_atomic  # noqa: F401  (its old home)
from ..figures import save_grid  # noqa: F401  (the grid's old home)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_yaml(path: Path, data: Any) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))
