"""Pieces shared by matchers: DSA options, batched real batches, per-class means, the run's length."""

from __future__ import annotations

import torch
from condensery import RealData, RunContext
from condensery.data import DSA

from .options import DSAOptions


def real_class_batches(data: RealData, per_class: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A real batch of up to ``per_class`` images of every class, class-ordered, one gather."""
    idx = torch.cat([data.class_batch_indices(c, per_class, generator) for c in range(data.num_classes)])
    return data.train_x[idx], data.train_y[idx]


def siamese_batches(
    data: RealData,
    images: torch.Tensor,
    labels: torch.Tensor,
    per_class: int,
    generator: torch.Generator,
    dsa: DSA | None,
    present_classes_only: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A real batch per class and the synthetic images, both under the same per-class DSA draw.

    Returns ``(real, real_labels, synthetic)``. With ``present_classes_only`` the real batch
    keeps only classes that occur in ``labels`` (a process's share of class-separable work);
    the random draws are the same either way, so the process count never changes them.
    """
    real, real_y = real_class_batches(data, per_class, generator)
    if present_classes_only:
        classes = labels.unique()
        if len(classes) < data.num_classes:
            keep = torch.isin(real_y, classes)
            real, real_y = real[keep], real_y[keep]
    syn = images
    if dsa is not None:
        params = dsa.sample(data.num_classes, generator, images.device)
        real = dsa.apply(real, params, real_y)
        syn = dsa.apply(images, params, labels)
    return real, real_y, syn


def class_means(features: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Mean feature per class ``[k, D]`` via one scatter-add."""
    sums = torch.zeros(k, features.shape[1], device=features.device, dtype=features.dtype)
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=k).clamp_min(1).to(features.dtype)
    return sums / counts.unsqueeze(1)


def dsa_from(options: DSAOptions) -> DSA | None:
    return DSA(options.dsa_ops, variant=options.dsa_variant) if options.dsa else None


def synthesis_steps(ctx: RunContext) -> int:
    """The recipe's synthesizer iterations (0 if it has none): how many passes a matcher's
    network can expect, which ``runtime.compile: auto`` weighs against the compile."""
    return int((ctx.recipe.get("synthesizer") or {}).get("iterations", 0))
