"""Task and RunContext: what every plugin receives."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data.realdata import RealData
from ..models.options import is_model_name  # noqa: F401  (defined without torch, for options validators)
from .checkpoints import CheckpointStore
from .errors import UserError
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


class RunContext:
    """Task, data, runtime, registry, checkpoints and the metrics sink of one run."""

    def __init__(
        self,
        task: Task,
        data: RealData,
        runtime: Runtime,
        registry: Any,
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
        return build_model(self.registry, self.model_spec(name, **options), self.task).to(self.device)

    def random_subset(self, ipc: int, stream: str = "random-subset") -> SyntheticSet:
        """The class-balanced random real subset of ``ipc`` images per class."""
        x, y = random_subset_draw(self.data, ipc, self.runtime.seed, stream)
        return SyntheticSet(x, y, metadata={"method": "random", "ipc": ipc, "num_classes": self.task.num_classes})


def random_subset_draw(data: RealData, ipc: int, seed: int,
                       stream: str = "random-subset") -> tuple[torch.Tensor, torch.Tensor]:
    """The random baseline's images for ``seed``, defined once: a method that starts from real
    images (MGDD's X0) can start from exactly this draw, making its comparison paired."""
    return data.balanced_batch(ipc, make_generator(seed, stream, ipc))


def label_like(ctx: RunContext, template: SyntheticSet, subject: SyntheticSet, *stream: Any) -> SyntheticSet:
    """``subject`` labelled the way ``template`` was: its own least-squares labels, or as it is.

    A set whose ``metadata["label_solver"]`` is ``{"matcher": NAME, "options": {...}}`` carries
    labels solved in that matcher's feature space (KRR, MGDD's ``labels.set: krr``); the set
    it is compared with (the random real subset) must get *its own* labels from the same
    solver, or the comparison mixes a label method with an image method. Returns a copy of
    ``subject`` with ``labels = solve_labels(images, classes)``, ``classes`` = its class
    labels and the same ``label_solver``; a template without a solver returns ``subject``.
    ``stream`` (e.g. a run index) further salts the real batch the solve draws.
    """
    spec = template.metadata.get("label_solver")
    if not isinstance(spec, dict):
        return subject
    name, options = spec.get("matcher"), spec.get("options") or {}
    if not isinstance(name, str) or not isinstance(options, dict):
        raise UserError(f"label_solver {spec!r} must be {{matcher: NAME, options: {{...}}}}")
    cls = ctx.registry.get("matcher", name).obj
    if not cls.solves_labels:
        raise UserError(f"label_solver names matcher '{name}', which does not solve labels; name one that does (e.g. krr)")
    try:
        matcher = cls(cls.Options(**options))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).splitlines()
        raise UserError(f"label_solver options {options} do not fit matcher '{name}': {' '.join(first[:3])}") from None
    matcher.prepare(ctx)
    classes = subject.hard_labels
    gen = ctx.generator("label-solve", len(subject), *stream)
    labels = matcher.solve_labels(subject.images, classes, gen).detach()
    metadata = {**subject.metadata, "label_kind": "regression", "label_solver": spec}
    return SyntheticSet(subject.images, labels, subject.lr, subject.stages, subject.stage_lrs, metadata,
                        classes.long())


def build_model(registry: Any, spec: dict[str, Any], task: Task) -> nn.Module:
    """Build ``spec`` (``{"name": ..., **options}``) for the task's shape and classes."""
    opts = {k: v for k, v in spec.items() if k != "name"}
    name = spec.get("name", "convnet")
    c, h, w = task.image_shape
    table = registry.components["model"]
    if name in table:
        factory = table[name].obj
    else:
        from ..models.factory import model_factory

        factory = model_factory(name)
    try:
        return factory(num_classes=task.num_classes, in_chans=c, img_size=h, **opts)
    except (TypeError, ValueError) as exc:
        raise UserError(f"model '{name}' cannot be built with options {opts}: {exc}") from None
