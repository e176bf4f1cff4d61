"""A wheel works from an empty directory: recipes are package data, runnable by name.

The wheel is built from a copy of the source tree (so the clone gets no build/ or egg-info),
installed with ``--no-deps`` into a fresh virtual environment that sees the already-installed
dependencies (``--system-site-packages``), and run from an empty folder, where no
``recipes/`` folder exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", "runs", "build", "dist", "*.egg-info", "__pycache__", ".venv*", ".data",
                              ".whl", ".pytest_cache", ".ruff_cache")

pytestmark = pytest.mark.slow


def sh(*args: str | Path, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}: {proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=SKIP)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", src)
    (wheel,) = (root / "dist").glob("condensery-*.whl")
    venv = root / "venv"
    sh(sys.executable, "-m", "venv", "--system-site-packages", venv)
    sh(venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel)
    empty = root / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return wheel, venv, empty, env


def test_the_wheel_holds_every_recipe(wheel_env):
    wheel = wheel_env[0]
    inside = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("condensery/recipes/")}
    expected = {f"condensery/recipes/{p.relative_to(REPO / 'recipes').as_posix()}" for p in (REPO / "recipes").rglob("*.yaml")}
    assert expected and expected <= inside


def test_the_installed_wheel_runs_the_quickstart_by_name_from_an_empty_directory(wheel_env):
    _, venv, empty, env = wheel_env
    where = sh(venv / "bin" / "python", "-c", "import condensery; print(condensery.__file__)", cwd=empty, env=env)
    assert str(venv) in where.stdout, f"the wheel's condensery is not the one imported: {where.stdout}"
    listing = sh(venv / "bin" / "condensery", "recipes", "--json", cwd=empty, env=env)
    names = {r["name"] for r in json.loads(listing.stdout)}
    assert {"quickstart", "digits/dc-ipc1"} <= names
    sh(venv / "bin" / "condensery", "run", "quickstart", "--quiet", "--set", "synthesizer.iterations=5",
       "--set", "evaluators.0.runs=2", "--set", "evaluators.0.epochs=2", "--set", "runtime.threads=1",
       cwd=empty, env=env)
    metrics = json.loads((empty / "runs" / "quickstart" / "metrics.json").read_text())
    assert {r["set"] for r in metrics["results"]} == {"synthetic", "random"}
    sh(venv / "bin" / "condensery", "recipes", "copy", "digits/dc-ipc1", cwd=empty, env=env)
    assert (empty / "dc-ipc1.yaml").read_text() == (REPO / "recipes" / "digits" / "dc-ipc1.yaml").read_text()
