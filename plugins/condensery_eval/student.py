"""The soft-label evaluator's student: trained on a set with soft targets, mixed batch by batch."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import RunContext, SyntheticSet, backward_step

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


def train_student(
    ctx: RunContext, p: SoftLabelOptions, images: torch.Tensor, lr: float, gen: torch.Generator,
    teacher: nn.Module | None = None, stored: torch.Tensor | None = None, model: nn.Module | None = None,
    label_loss: Literal["kd", "mse"] = "kd",
) -> nn.Module:
    """Train a fresh student on ``images`` with soft targets from ``teacher`` (or ``stored`` probabilities).

    ``label_loss: mse`` takes ``stored`` as regression targets: ``½ ||logits − target||²``.
    """
    if label_loss == "mse" and stored is None:
        raise ValueError("label_loss mse needs stored regression targets")
    model = model if model is not None else ctx.create_model(p.model)
    if p.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=p.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=p.momentum, weight_decay=p.weight_decay)
    if p.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p.epochs)
    elif p.schedule == "step":
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[max(1, p.epochs // 2)], gamma=0.1)
    else:
        sched = None
    aug = augmenter(p.augment)
    scaler = ctx.runtime.grad_scaler()
    autocast = ctx.runtime.autocast
    n, temp = images.shape[0], p.temperature
    if teacher is not None:
        teacher.eval()  # predict()/accuracy() leave a model in train mode
    model.train()
    for _epoch in range(p.epochs):
        order = torch.randperm(n, generator=gen).to(images.device)
        for start in range(0, n, p.batch_size):
            idx = order[start : start + p.batch_size]
            x = images[idx]
            if aug is not None:
                x = aug(x, gen)
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
                loss = 0.5 * ((out.float() - target) ** 2).sum(dim=1).mean()
            else:
                loss = kd_loss(out.float(), target, temp)
            if not torch.isfinite(loss):
                from condensery import DivergenceError

                raise DivergenceError(f"soft-label student loss became {loss.item()}; lower the lr")
            opt.zero_grad(set_to_none=True)
            backward_step(loss, opt, scaler)
        if sched is not None:
            sched.step()
    return model
