"""A saved set against a task: the checks and the conversion every reader of a set applies.

``condensery eval`` (reading a set file or folder) and a synthesizer continuing a saved set
(``init_from``) refuse the same mismatches and convert the same normalisations.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .api.errors import UserError

if TYPE_CHECKING:
    from .api.context import Task
    from .api.synthetic import SyntheticSet

__all__ = ["check_set", "class_index", "to_task_space"]


def class_index(names: list[str], task: Task, where: str | Path) -> list[int]:
    """Folder / stored class names -> dataset class indices: same names, or numbers 0..K-1."""
    if all(n in task.class_names for n in names):
        return [task.class_names.index(n) for n in names]
    if all(n.isdigit() and int(n) < task.num_classes for n in names):
        return [int(n) for n in names]
    bad = next(n for n in names if n not in task.class_names)
    raise UserError(
        f"'{where}': class '{bad}' is not a class of '{task.dataset}' ({', '.join(task.class_names[:10])}"
        f"{', ...' if task.num_classes > 10 else ''}); name the classes like the dataset or number them 0..{task.num_classes - 1}"
    )


def check_set(syn: SyntheticSet, task: Task, where: str | Path) -> None:
    """Refuse a set that cannot be one of ``task``'s: non-finite pixels, another shape, labels or classes."""
    bad = ~torch.isfinite(syn.images.reshape(len(syn), -1)).all(dim=1)
    if bad.any():
        raise UserError(f"'{where}': image {int(bad.nonzero()[0, 0])} has non-finite pixels (NaN or inf); "
                        "the set is damaged, distil it again")
    if tuple(syn.images.shape[1:]) != tuple(task.image_shape):
        raise UserError(f"'{where}' holds images of shape {list(syn.images.shape[1:])}, but '{task.dataset}' "
                        f"has {list(task.image_shape)}; evaluate it with a recipe for the dataset it was distilled from")
    if syn.soft and syn.labels.shape[1] != task.num_classes:
        raise UserError(f"'{where}' has soft labels over {syn.labels.shape[1]} classes, but '{task.dataset}' has {task.num_classes}")
    if not syn.soft and (int(syn.labels.min()) < 0 or int(syn.labels.max()) >= task.num_classes):
        raise UserError(f"'{where}' has labels outside 0..{task.num_classes - 1} of '{task.dataset}'")
    names = syn.metadata.get("class_names")
    if names and list(map(str, names)) != list(task.class_names):
        if len(names) != task.num_classes or class_index([str(n) for n in names], task, where) != list(range(task.num_classes)):
            raise UserError(f"'{where}' was distilled for classes {names[:5]}..., which are not those of '{task.dataset}'")


def to_task_space(syn: SyntheticSet, task: Task) -> SyntheticSet:
    """Convert images saved under another normalisation to the task's."""
    mean, std = syn.metadata.get("mean"), syn.metadata.get("std")
    if mean is None or std is None or (list(mean) == list(task.mean) and list(std) == list(task.std)):
        return syn
    if len(mean) != len(task.mean):
        raise UserError(f"the set has {len(mean)} channels of normalisation, the task {len(task.mean)}")

    def col(v):
        return torch.tensor(v, dtype=torch.float32)[None, :, None, None]

    unit = syn.images * col(std) + col(mean)
    syn.images = (unit - col(task.mean)) / col(task.std)
    syn.metadata.update(mean=task.mean, std=task.std)
    return syn
