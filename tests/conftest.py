"""Shared fixtures: an isolated cache, tiny datasets written by the tests, and an in-process CLI."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    os.environ["CONDENSERY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield


@pytest.fixture
def one_thread():
    """One torch thread for the test (bit-for-bit comparisons within a test), restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``condensery ARGS`` in this process; returns exit code, stdout and stderr."""
    from condensery._engine.cli import main

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def digits_recipe(name: str, *, width: int = 8, runs: int = 1, epochs: int = 1, synthesizer: str | None = None) -> str:
    """The small task most tests judge on: digits, a depth-2 ConvNet of ``width``, one
    hard-label evaluator of ``runs`` x ``epochs``, one thread (``synthesizer`` as flow YAML)."""
    section = f"synthesizer: {synthesizer}\n" if synthesizer else ""
    return (f"name: {name}\nseed: 0\ndata: {{name: digits}}\nmodel: {{name: convnet, depth: 2, width: {width}}}\n"
            f"{section}evaluators: [{{name: hard-label, runs: {runs}, epochs: {epochs}}}]\nruntime: {{threads: 1}}\n")


def task_context(recipe: str | Path, run_dir: Path | None = None):
    """The RunContext of a recipe (its text, or a path) as every command opens it: ``open_task``."""
    import yaml
    from condensery import open_task
    from condensery._engine.plugins import get_registry

    doc = recipe if isinstance(recipe, Path) else yaml.safe_load(recipe)
    return open_task(doc, get_registry(), run_dir=run_dir, announce=False)[1]


def write_recipe(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TINY_DM = """
name: tiny
seed: 0
data: {name: digits}
model: {name: convnet, width: 16}
synthesizer:
  name: pixel
  ipc: 1
  iterations: 20
  matcher: {name: distribution, batch_real: 16}
evaluators:
  - {name: hard-label, runs: 2, epochs: 20}
"""


@pytest.fixture
def tiny_recipe(tmp_path) -> Path:
    return write_recipe(tmp_path / "tiny.yaml", TINY_DM)


def tiny_tensors(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random 3x4x4 images and labels of 3 classes, the same every call."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def tiny_classifier() -> torch.nn.Module:
    """An MLP for ``tiny_tensors``, initialised the same every call."""
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 3))


class Stop(Exception):
    """A run killed at a chosen step (raised from inside its loop)."""


def stop_at(monkeypatch, matcher, step: int) -> None:
    """Make ``matcher.loss`` raise ``Stop`` at ``step``, as if the run were killed there."""
    loss = matcher.loss

    def dying(images, labels, at, *args, **kwargs):
        if at == step:
            raise Stop
        return loss(images, labels, at, *args, **kwargs)

    monkeypatch.setattr(matcher, "loss", dying)


def python() -> str:
    return sys.executable


def built(kind: str, name: str, options=None):
    """The component registered as ``name``, built the way a recipe builds it (it knows its name)."""
    from condensery import get_registry

    return get_registry().get(kind, name).build(options)
