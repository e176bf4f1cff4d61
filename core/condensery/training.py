"""Train a classifier on a (small) labelled tensor set and measure accuracy.

The one loop every evaluator, teacher, expert-training stage and analysis run shares: SGD
with momentum (or AdamW), weight decay, lr x0.1 at half of training (or cosine, or constant),
batched on-device augmentation, hard or soft targets (cross-entropy) or regression targets
(squared error, as KIP/RFAD train on KRR labels), mixed precision through the runtime's
autocast (and, for fp16, its loss scaler). A ``batch_loss`` callback replaces the label loss
where targets are made batch by batch (the soft-label student: mixing, teacher, KD loss).
``compiled`` (the runtime's ``compiled``) puts the training forward through ``torch.compile``
when ``runtime.compile`` asks for it: training is first order, and the compiled graph is
reused by every later network of the same class. Accuracy is measured once, at the end.
``seed_global`` / ``seed_global_from`` make the initial weights of the next network a
function of a named stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .api.errors import DivergenceError
from .api.runtime import make_generator

__all__ = [
    "train_classifier", "BatchLoss", "backward_step", "predict", "accuracy",
    "soft_cross_entropy", "squared_error", "seed_global", "seed_global_from"
]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
"""``batch_loss(model, x, idx, generator) -> loss``: the loss of one (augmented) batch ``x``
of ``images[idx]``; it runs the model's forward pass itself (``model(x)``: the network or its
compiled forward) and may draw from ``generator``."""
Compiled = Callable[..., Callable[..., torch.Tensor]]


def seed_global_from(generator: torch.Generator) -> None:
    """Seed torch's global RNG with one draw of ``generator``.

    Why: layers initialise their weights from the global RNG, so a network built right after
    this call is a function of the stream alone (the same on every process and on resume).
    """
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))


def seed_global(seed: int, *stream: Any) -> torch.Generator:
    """``seed_global_from`` the stream ``(seed, *stream)``; returns that stream, one draw on."""
    generator = make_generator(seed, *stream)
    seed_global_from(generator)
    return generator


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


def _label_loss(labels: torch.Tensor, label_loss: str, autocast: Callable | None) -> BatchLoss:
    """The ``BatchLoss`` of stored ``labels`` (``train_classifier`` describes ``label_loss``)."""
    if label_loss not in ("auto", "ce", "mse"):
        raise ValueError(f"label_loss must be auto, ce or mse, not {label_loss!r}")
    if label_loss == "mse" and labels.dim() != 2:
        raise ValueError("label_loss mse needs [N, K] regression targets, not class indices")
    soft = labels.dim() == 2

    def loss(model: nn.Module, x: torch.Tensor, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        y = labels[idx]
        with autocast() if autocast else nullcontext():
            out = model(x)
        out = out.float()
        if label_loss == "mse":
            return squared_error(out, y)
        return soft_cross_entropy(out, y) if soft else F.cross_entropy(out, y)

    return loss


def _optimizer(model: nn.Module, kind: str, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be sgd or adamw, not {kind!r}")


def _schedule(opt: torch.optim.Optimizer, kind: str, epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    if kind == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[max(1, epochs // 2)], gamma=0.1)
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    if kind == "none":
        return None
    raise ValueError(f"lr_schedule must be step, cosine or none, not {kind!r}")


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    epochs: int,
    lr: float,
    generator: torch.Generator,
    batch_size: int = 256,
    optimizer: Literal["sgd", "adamw"] = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    augment: Augment | None = None,
    autocast: Callable | None = None,
    lr_schedule: Literal["step", "cosine", "none"] = "step",
    label_loss: Literal["auto", "ce", "mse"] = "auto",
    batch_loss: BatchLoss | None = None,
    scaler: torch.amp.GradScaler | None = None,
    on_step: Callable[[int, nn.Module], None] | None = None,
    on_epoch: Callable[[int, nn.Module], None] | None = None,
    progress: Callable[[range], Iterable[int]] | None = None,
    compiled: Compiled | None = None,
) -> nn.Module:
    """Train ``model`` in place; ``labels`` are class indices ``[N]`` or targets ``[N,K]``.

    ``label_loss``: ``auto``/``ce`` is cross-entropy (against probabilities for ``[N,K]``);
    ``mse`` is ``½ ||logits − targets||²`` on ``[N,K]`` regression targets (e.g. KRR labels).
    ``batch_loss`` replaces both (then ``labels=None``): see ``BatchLoss``.

    Each epoch draws one ``randperm`` from ``generator``, then per batch ``augment`` and
    ``batch_loss`` draw from it in that order. ``optimizer: adamw`` ignores ``momentum``.
    ``scaler``: the runtime's ``grad_scaler()``; fp16 needs it so small gradients do not
    flush to zero (steps with inf/NaN gradients are then skipped, as GradScaler does).
    ``on_step(step, model)`` runs after every optimizer step (``step`` counts from 1 over
    all epochs), ``on_epoch(epoch, model)`` after each epoch's lr step; ``progress`` wraps
    ``range(epochs)`` (e.g. a progress bar). A non-finite loss raises ``DivergenceError``.
    ``compiled``: ``ctx.runtime.compiled``, to run the forward passes through ``torch.compile``
    when the recipe's ``runtime.compile`` asks (told the number of passes, for ``auto``).
    """
    if (labels is None) == (batch_loss is None):
        raise ValueError("train_classifier takes exactly one of labels and batch_loss")
    loss_of = batch_loss if batch_loss is not None else _label_loss(labels, label_loss, autocast)
    opt = _optimizer(model, optimizer, lr, momentum, weight_decay)
    sched = _schedule(opt, lr_schedule, epochs)
    n, step = images.shape[0], 0
    forward = model if compiled is None else compiled(model, passes=epochs * -(-n // batch_size))
    model.train()
    for epoch in progress(range(epochs)) if progress else range(epochs):
        perm = torch.randperm(n, generator=generator).to(images.device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            x = images[idx]
            if augment is not None:
                x = augment(x, generator)
            loss = loss_of(forward, x, idx, generator)
            if not torch.isfinite(loss):
                raise DivergenceError(f"training loss became {loss.item()} at epoch {epoch}; lower the lr")
            opt.zero_grad(set_to_none=True)
            backward_step(loss, opt, scaler)
            step += 1
            if on_step is not None:
                on_step(step, model)
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
