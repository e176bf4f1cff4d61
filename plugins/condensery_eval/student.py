"""The soft-label evaluator's student: trained on a set with soft targets, mixed batch by batch.

Its training is ``train_classifier`` with a ``BatchLoss`` (``student_loss``) that mixes each
augmented batch, then makes its targets (the teacher's, or the stored ones mixed alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import RunContext, SyntheticSet, train_classifier
from condensery.training import BatchLoss, squared_error

from .options import SoftLabelOptions
from .protocol import augmenter


def stored_targets(synset: SyntheticSet, num_classes: int) -> torch.Tensor:
    """The set's own labels as target distributions (one-hot for hard labels); regression
    (least-squares) labels as they are, never normalised into probabilities."""
    if synset.label_kind == "regression":
        return synset.labels.float()
    stored = synset.labels.float() if synset.soft else F.one_hot(synset.labels.long(), num_classes).float()
    return stored / stored.sum(dim=1, keepdim=True).clamp_min(1e-12)


def mix_batch(x: torch.Tensor, kind: str, alpha: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix within the batch: (mixed images, partner index, share of the original)."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=gen).to(x.device)
    if kind == "none" or n < 2:
        return x, perm, 1.0
    seed = int(torch.randint(2**62, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    if kind == "mixup":
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[2:]
    rh, rw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = (int(v) for v in torch.randint(0, 1 << 30, (2,), generator=gen))
    cy, cx = cy % h, cx % w
    y0, y1 = max(cy - rh // 2, 0), min(cy + rh // 2, h)
    x0, x1 = max(cx - rw // 2, 0), min(cx + rw // 2, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
    return out, perm, 1 - (y1 - y0) * (x1 - x0) / (h * w)


def kd_loss(student: torch.Tensor, target_logp: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(target ‖ softmax(student/T))`` with the target given as log-probabilities."""
    logp = F.log_softmax(student / temperature, dim=1)
    return F.kl_div(logp, target_logp, log_target=True, reduction="batchmean") * temperature**2


def student_loss(p: SoftLabelOptions, autocast: Callable, teacher: nn.Module | None = None,
                 stored: torch.Tensor | None = None, label_loss: Literal["kd", "mse"] = "kd") -> BatchLoss:
    """The student's ``BatchLoss``: ``mix_batch``, then the KD loss against the teacher's
    log-probabilities on the mixed batch (or the mixed ``stored`` probabilities), or, for
    ``label_loss: mse``, squared error against the mixed ``stored`` regression targets."""
    if label_loss == "mse" and stored is None:
        raise ValueError("label_loss mse needs stored regression targets")
    temp = p.temperature

    def loss(model: nn.Module, x: torch.Tensor, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x, partner, lam = mix_batch(x, p.mix, p.mix_alpha, gen)
        if teacher is not None:
            with torch.no_grad(), autocast():
                target = F.log_softmax(teacher(x).float() / temp, dim=1)
        elif label_loss == "mse":
            ys = stored[idx]
            target = lam * ys + (1 - lam) * ys[partner]
        else:
            probs = stored[idx]
            target = (lam * probs + (1 - lam) * probs[partner]).clamp_min(1e-8).log()
        with autocast():
            out = model(x)
        if label_loss == "mse":
            return squared_error(out.float(), target)
        return kd_loss(out.float(), target, temp)

    return loss


def train_student(
    ctx: RunContext, p: SoftLabelOptions, images: torch.Tensor, lr: float, gen: torch.Generator,
    teacher: nn.Module | None = None, stored: torch.Tensor | None = None, model: nn.Module | None = None,
    label_loss: Literal["kd", "mse"] = "kd",
) -> nn.Module:
    """Train a fresh student (or ``model`` further) on ``images`` with ``student_loss``."""
    loss = student_loss(p, ctx.runtime.autocast, teacher, stored, label_loss)
    model = model if model is not None else ctx.create_model(p.model)
    if teacher is not None:
        teacher.eval()  # predict()/accuracy() leave a model in train mode
    return train_classifier(
        model, images, None, epochs=p.epochs, lr=lr, generator=gen, batch_size=p.batch_size,
        optimizer=p.optimizer, momentum=p.momentum, weight_decay=p.weight_decay, augment=augmenter(p.augment),
        autocast=ctx.runtime.autocast, lr_schedule=p.schedule, scaler=ctx.runtime.grad_scaler(), batch_loss=loss,
        compiled=ctx.runtime.compiled,
    )
