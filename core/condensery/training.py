"""Train a classifier on a (small) labelled tensor set and measure accuracy.

The one loop every evaluator and expert-training stage shares: SGD with momentum, weight
decay, lr x0.1 at half of training, batched on-device augmentation, hard or soft targets
(cross-entropy) or regression targets (squared error, as KIP/RFAD train on KRR labels),
mixed precision through the runtime's autocast (and, for fp16, its loss scaler). Accuracy
is measured once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import DivergenceError

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a probability vector per row (reduces to CE for one-hot)."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def squared_error(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``½ ||logits − targets||²`` per row, averaged: the loss of regression (KRR) targets."""
    return 0.5 * ((logits - targets) ** 2).sum(dim=1).mean()


def backward_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler | None = None) -> None:
    """``loss.backward(); optimizer.step()``, through ``scaler`` when one is given (fp16)."""
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    generator: torch.Generator,
    batch_size: int = 256,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    augment: Augment | None = None,
    autocast=None,
    lr_schedule: str = "step",
    on_epoch: Callable[[int, nn.Module], None] | None = None,
    label_loss: Literal["auto", "ce", "mse"] = "auto",
    scaler: torch.amp.GradScaler | None = None,
) -> nn.Module:
    """Train ``model`` in place; ``labels`` are class indices ``[N]`` or targets ``[N,K]``.

    ``label_loss``: ``auto``/``ce`` is cross-entropy (against probabilities for ``[N,K]``);
    ``mse`` is ``½ ||logits − targets||²`` on ``[N,K]`` regression targets (e.g. KRR labels).
    ``scaler``: the runtime's ``grad_scaler()``; fp16 needs it so small gradients do not
    flush to zero (steps with inf/NaN gradients are then skipped, as GradScaler does).
    """
    if label_loss not in ("auto", "ce", "mse"):
        raise ValueError(f"label_loss must be auto, ce or mse, not {label_loss!r}")
    if label_loss == "mse" and labels.dim() != 2:
        raise ValueError("label_loss mse needs [N, K] regression targets, not class indices")
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if lr_schedule == "step":
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[max(1, epochs // 2)], gamma=0.1)
    elif lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    else:
        sched = None
    n = images.shape[0]
    soft = labels.dim() == 2
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=generator).to(images.device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            x, y = images[idx], labels[idx]
            if augment is not None:
                x = augment(x, generator)
            with autocast() if autocast else nullcontext():
                out = model(x)
            out = out.float()
            if label_loss == "mse":
                loss = squared_error(out, y)
            else:
                loss = soft_cross_entropy(out, y) if soft else F.cross_entropy(out, y)
            if not torch.isfinite(loss):
                raise DivergenceError(f"training loss became {loss.item()} at epoch {epoch}; lower the lr")
            opt.zero_grad(set_to_none=True)
            backward_step(loss, opt, scaler)
        if sched is not None:
            sched.step()
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1024, autocast=None) -> torch.Tensor:
    """Class predictions for ``images`` in eval mode."""
    model.eval()
    preds = []
    for start in range(0, images.shape[0], batch_size):
        with autocast() if autocast else nullcontext():
            preds.append(model(images[start : start + batch_size]).float().argmax(dim=1))
    model.train()
    return torch.cat(preds)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, autocast=None) -> float:
    """Fraction of ``images`` classified correctly."""
    return float((predict(model, images, autocast=autocast) == labels).float().mean())
