"""Task and RunContext: what every plugin receives.

A RunContext is built by the engine (``condensery.open_task`` / ``context_of``) from a
recipe; a plugin may also build one for a sub-task from the parts of its own (MGDD's
meta-training tasks). What it asks of the registry it is given is ``Registry`` below, so
building models and firing run events stay the engine's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn

from .checkpoints import CheckpointStore
from .data import RealData
from .progress import note_metrics, progress
from .runtime import Runtime, make_generator
from .synthetic import SyntheticSet


@dataclass
class Task:
    """What the distilled set is for: the data, the model family and how it is judged."""

    dataset: str
    num_classes: int
    class_names: list[str]
    image_shape: tuple[int, int, int]
    mean: list[float]
    std: list[float]
    model: dict[str, Any]
    protocol: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "num_classes": self.num_classes, "image_shape": list(self.image_shape),
            "mean": self.mean, "std": self.std, "model": self.model, "protocol": self.protocol,
        }


class Registry(Protocol):
    """What a RunContext (and a plugin, through ``ctx.registry``) asks of the engine's registry."""

    #: the pluggy plugin manager: ``pm.hook.on_step(...)`` fires a run event to every plugin
    pm: Any

    def get(self, kind: str, name: str) -> Any:
        """The component registered as ``name`` of ``kind`` (``.obj`` is the class), or a UserError."""

    def build_model(self, spec: dict[str, Any], task: Task) -> nn.Module:
        """A fresh network of ``spec`` (``{name, **options}``) for ``task``'s shape and classes."""


class RunContext:
    """Task, data, runtime, registry, checkpoints and the metrics sink of one run."""

    def __init__(
        self,
        task: Task,
        data: RealData,
        runtime: Runtime,
        registry: Registry,
        run_dir: Path | None = None,
        recipe: dict[str, Any] | None = None,
        matcher: Any = None,
    ) -> None:
        self.task = task
        self.data = data
        self.runtime = runtime
        self.registry = registry
        self.run_dir = Path(run_dir) if run_dir else None
        self.recipe = recipe or {}
        self.matcher = matcher
        self.checkpoints = CheckpointStore((self.run_dir or Path(".")) / "checkpoints")
        self.history: list[dict[str, Any]] = []
        self._log_checked = False  # whether logs/steps.jsonl was checked for a torn last line
        self._started = time.monotonic()
        self._last_logged: dict[str, tuple[int, float]] = {}  # stage -> (step, time) of its last row

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    def generator(self, *stream: Any) -> torch.Generator:
        return self.runtime.generator(*stream)

    def progress(self, iterable, desc: str = "", total: int | None = None):
        return progress(iterable, desc=desc, total=total)

    def log(self, stage: str, step: int, **metrics: float) -> None:
        """Record metrics of a step, append them to ``logs/steps.jsonl`` and pass them to ``on_step`` (main process).

        Appended line by line (main process only) so the curve of a run that is killed, or
        stops on a NaN, is still on disk; a resumed run appends after what its first attempt wrote.
        Each row also has ``time_s`` (seconds since this attempt's context was made) and
        ``step_s`` (mean wall seconds per step since the stage's previous row): timing
        without a profiler. Trackers and ``on_step`` get the metrics alone.
        """
        values = {k: float(v) for k, v in metrics.items()}
        now = time.monotonic()
        previous = self._last_logged.get(stage)
        timing = {"time_s": round(now - self._started, 3)}
        if previous is not None and step > previous[0]:
            timing["step_s"] = round((now - previous[1]) / (step - previous[0]), 4)
        self._last_logged[stage] = (step, now)
        self.history.append({"stage": stage, "step": step, **values})
        row = {"stage": stage, "step": step, **values, **timing}
        note_metrics(stage, step, values)
        if self.run_dir is not None and self.runtime.is_main:
            path = self.run_dir / "logs" / "steps.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab+") as f:
                f.seek(0, 2)
                if f.tell() and not self._log_checked:  # a killed attempt may have left half a line
                    f.seek(-1, 2)
                    if f.read(1) != b"\n":
                        f.write(b"\n")
                self._log_checked = True
                f.write((json.dumps(row) + "\n").encode())
        if self.runtime.is_main:  # one event per step, not one per process
            self.registry.pm.hook.on_step(context=self, stage=stage, step=step, metrics=metrics)

    def model_spec(self, name: str | None = None, **options: Any) -> dict[str, Any]:
        """The spec ``create_model(name, **options)`` builds: the recipe's model unless ``name``
        names another, with ``options`` on top."""
        spec = dict(self.task.model)
        if name is not None and name != spec.get("name"):
            spec = {"name": name}
        spec.update(options)
        return spec

    def create_model(self, name: str | None = None, **options: Any) -> nn.Module:
        """A fresh network for the task (the recipe's model unless ``name`` is given), on the device."""
        return self.build_model(self.model_spec(name, **options))

    def build_model(self, spec: dict[str, Any]) -> nn.Module:
        """A fresh network of exactly ``spec`` (``{name, **options}``, e.g. a teacher's) for the task, on the device."""
        return self.registry.build_model(spec, self.task).to(self.device)

    def random_subset(self, ipc: int, stream: str = "random-subset") -> SyntheticSet:
        """The class-balanced random real subset of ``ipc`` images per class."""
        x, y = random_subset_draw(self.data, ipc, self.runtime.seed, stream)
        return SyntheticSet(x, y, metadata={"method": "random", "ipc": ipc, "num_classes": self.task.num_classes})


def random_subset_draw(data: RealData, ipc: int, seed: int,
                       stream: str = "random-subset") -> tuple[torch.Tensor, torch.Tensor]:
    """The random baseline's images for ``seed``, defined once: a method that starts from real
    images (MGDD's X0) can start from exactly this draw, making its comparison paired."""
    return data.balanced_batch(ipc, make_generator(seed, stream, ipc))
