"""Sub-tasks for meta-training, and the closed-form KRR labels of an initial set.

A sub-task is a random class subset of the source dataset (relabelled 0..m-1) with a
random images-per-class. It gets its own ``RunContext`` (task with m classes, the subset
of the training split) so any matcher, prepared on it, sees exactly that problem; its
random streams are salted with the task index so two tasks on the same classes still draw
different real batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from condensery import RealData, RunContext, Task, make_generator
from condensery_matching.krr import KRRMatcher, KRROptions


@dataclass
class SubTask:
    index: int
    classes: list[int]
    ipc: int


class TaskContext(RunContext):
    """A RunContext whose named random streams are salted with a task index."""

    def __init__(self, *args, salt: object = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.salt = salt

    def generator(self, *stream: object) -> torch.Generator:
        return make_generator(self.runtime.seed, "mgdd-task", self.salt, *stream)


def sample_task(seed: int, index: int, num_classes: int, min_classes: int, max_classes: int | None,
                ipcs: list[int], smallest_class: int) -> SubTask:
    """Task ``index``: a class subset of random size and a random ipc, from its own stream."""
    gen = make_generator(seed, "mgdd-sample-task", index)
    hi = min(max_classes or num_classes, num_classes)
    lo = min(max(min_classes, 2), hi)
    m = int(torch.randint(lo, hi + 1, (1,), generator=gen))
    classes = sorted(torch.randperm(num_classes, generator=gen)[:m].tolist())
    usable = [i for i in ipcs if i <= smallest_class] or [1]
    ipc = usable[int(torch.randint(len(usable), (1,), generator=gen))]
    return SubTask(index, classes, ipc)


def class_subset(data: RealData, classes: list[int]) -> RealData:
    """The training split restricted to ``classes``, relabelled 0..m-1 (no val/test: not needed)."""
    idx = torch.cat([data.class_indices[c] for c in classes])
    y = torch.cat([torch.full((len(data.class_indices[c]),), i, dtype=data.train_y.dtype, device=data.train_y.device)
                   for i, c in enumerate(classes)])
    empty_x, empty_y = data.train_x[:0], data.train_y[:0]
    return RealData(data.name, data.train_x[idx], y, empty_x, empty_y, empty_x, empty_y,
                    [data.class_names[c] for c in classes], data.mean, data.std, data.zca)


def task_context(ctx: RunContext, task: SubTask) -> TaskContext:
    data = class_subset(ctx.data, task.classes)
    t = ctx.task
    sub = Task(t.dataset, len(task.classes), data.class_names, t.image_shape, t.mean, t.std, dict(t.model))
    recipe = {"synthesizer": {"ipc": task.ipc}}
    return TaskContext(sub, data, ctx.runtime, ctx.registry, ctx.run_dir, recipe, salt=task.index)


class KRRLabeler:
    """Closed-form support labels in an RFAD random-feature space: ``KRRMatcher.solve_labels``.

    ``Y_s = argmin_Y ||K_ts (K_ss + λI)⁻¹ Y − Y_t||²`` with ``Y_t`` the centred one-hot labels
    of a fresh real batch; solved in float64 through the pseudo-inverse. ``options`` is the
    solver's ``KRROptions`` (what a set's ``label_solver`` metadata records).
    """

    def __init__(self, ctx: RunContext, num_models: int, width: int, batch_real: int, reg: float) -> None:
        self.options = KRROptions(num_models=num_models, width=width, batch_real=batch_real,
                                  reg=reg, dsa=False, resample_every=1)
        self.matcher = KRRMatcher(self.options)
        self.matcher.prepare(ctx)
        self.ctx = ctx

    def labels(self, x0: torch.Tensor, draw: int, gen: torch.Generator) -> torch.Tensor:
        """Labels of ``x0``; ``draw`` must be 0 (the one fixed feature space every caller uses)."""
        if draw != 0:
            raise ValueError(f"KRRLabeler solves in feature draw 0 only, not {draw}")
        return self.matcher.solve_labels(x0, None, gen)

    def solver_record(self) -> dict:
        """``{"matcher": "krr", "options": ...}``: how a set's random arm gets the same labels."""
        keys = ("num_models", "width", "batch_real", "reg", "dsa", "resample_every")
        return {"matcher": "krr", "options": {k: getattr(self.options, k) for k in keys}}
