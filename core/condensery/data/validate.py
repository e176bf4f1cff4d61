"""Checks on decoded data, before anything trains on it.

Bad data otherwise surfaces far from its cause: a label of -1 counts as an error at test
time, a label past the last class reads as "lower synthesizer.ipc", a NaN pixel as
"lower the learning rate". Each check names the split (or file) and the first bad index.
"""

from __future__ import annotations

import torch

from ..api.data import RawSplits
from ..api.errors import UserError


def first_index(mask: torch.Tensor) -> int:
    return int(mask.nonzero()[0, 0])


def check_labels(labels: torch.Tensor, num_classes: int, where: str) -> None:
    """Integral class indices in 0..num_classes-1."""
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        bad = labels != labels.round() if labels.is_floating_point() else torch.ones(1, dtype=torch.bool)
        if labels.dtype == torch.bool or bad.any():
            i = first_index(bad) if labels.is_floating_point() else 0
            raise UserError(f"{where}: labels must be integer class indices; label {labels[i].item()} at index {i}")
    out = (labels < 0) | (labels >= num_classes)
    if out.any():
        i = first_index(out)
        raise UserError(f"{where}: label {int(labels[i])} at index {i} is outside 0..{num_classes - 1} "
                        f"({num_classes} classes); fix the labels or the class list")


def check_pixels(images: torch.Tensor, where: str) -> None:
    """Finite pixels (integer images always are)."""
    if not images.is_floating_point():
        return
    bad = ~torch.isfinite(images.reshape(len(images), -1)).all(dim=1)
    if bad.any():
        i = first_index(bad)
        raise UserError(f"{where}: image {i} has non-finite pixels (NaN or inf); fix or drop it")


def validate_raw(raw: RawSplits, name: str) -> RawSplits:
    """``raw`` if every split is usable: labels integral and in range, pixels finite,
    every class present in the training split, neither split empty."""
    k = len(raw.class_names)
    for split, x, y in (("train", raw.train_images, raw.train_labels), ("test", raw.test_images, raw.test_labels)):
        where = f"data '{name}', {split} split"
        if len(y) == 0:
            raise UserError(f"{where} is empty; give it images")
        check_labels(y, k, where)
        check_pixels(x, where)
    counts = torch.bincount(raw.train_labels.long(), minlength=k)
    if (counts == 0).any():
        c = first_index(counts == 0)
        raise UserError(f"data '{name}', train split: class {c} ('{raw.class_names[c]}') has no images; "
                        "add some, or leave the class out with data.classes")
    return raw
