"""What the README tells a new user to type works as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.test_quickstart_identity import RECORDED_IN

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_the_first_two_commands_are_install_plus_quickstart_then_the_tests_and_ci_runs_them():
    first, second = blocks("bash")[:2]
    assert first.strip() == 'pip install -e ".[dev]" && condensery run quickstart'
    assert second.strip() == "python -m pytest -q"
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[dev]"' in ci and "python -m pytest -q" in ci


def test_the_models_snippet_runs_as_written():
    (snippet,) = [b for b in blocks("python") if "timm.create_model" in b]
    snippet += "\nassert net(__import__('torch').zeros(2, 3, 32, 32)).shape == (2, 10)\n"
    proc = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_lock_that_rebuilds_the_documented_environment_pins_what_the_fingerprint_was_recorded_with():
    (command,) = [line for b in blocks("bash") for line in b.splitlines() if "-c requirements/" in line]
    lock = REPO / command.split("-c ", 1)[1].split()[0]
    pins = dict(line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line and not line.startswith("#"))
    assert pins["torch"] == RECORDED_IN["torch"].split("+")[0]
    for name in ("numpy", "timm", "accelerate", "torchvision", "safetensors", "pluggy"):
        assert name in pins, f"{lock.name} does not pin {name}"
    assert f"torch {RECORDED_IN['torch']}" in README
