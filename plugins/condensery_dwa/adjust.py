"""Directed weight adjustment: a small, data-directed perturbation of the teacher per batch.

Starting from the teacher's weights theta, ``steps`` (K) normalised gradient-*ascent* steps of
the cross-entropy on the real images of the batch about to be synthesised:

    delta <- delta + (rho / K) * g / ||g||,   g = grad_delta CE(f_{theta+delta}(x_real), y)

with ||g|| the global L2 norm over all parameters, so ||delta|| <= rho (= rho when K = 1 or
all steps agree). Each batch is then recovered against theta + delta: a different
perturbation per batch decorrelates the batches, which is where DWA's diversity comes from.

The teacher is never written to: the perturbed weights are a separate name -> tensor dict
used through ``torch.func.functional_call``, the teacher's own parameters have
``requires_grad`` off, and the ascent runs the teacher in eval mode so its BatchNorm
running statistics stay as they are (the public code perturbs the live model, forgets to
restore it and leaves weight gradients on; this does neither). Eval mode during the ascent
is our choice (*unverified* against the authors' code, which may use train mode).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def frozen_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters as detached tensors, by name (what theta + delta is built on)."""
    return {name: p.detach() for name, p in model.named_parameters()}


def global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors]))


def directed_perturbation(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    rho: float,
    steps: int,
    autocast=None,
) -> dict[str, torch.Tensor]:
    """delta (name -> tensor) after ``steps`` normalised ascent steps of CE on (images, labels).

    ``model`` is evaluated in eval mode at theta + delta and left exactly as it was.
    """
    theta = frozen_parameters(model)
    delta = {k: torch.zeros_like(v) for k, v in theta.items()}
    if rho <= 0 or steps <= 0:
        return delta
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            d = {k: v.clone().requires_grad_(True) for k, v in delta.items()}
            params = {k: theta[k] + d[k] for k in theta}
            if autocast is not None:
                with autocast():
                    logits = torch.func.functional_call(model, params, (images,), strict=False)
            else:
                logits = torch.func.functional_call(model, params, (images,), strict=False)
            loss = F.cross_entropy(logits.float(), labels)
            grads = torch.autograd.grad(loss, list(d.values()), allow_unused=True)
            grads = [torch.zeros_like(v) if g is None else g for v, g in zip(d.values(), grads)]
            norm = global_norm(grads)
            if not torch.isfinite(norm) or norm == 0:
                break
            scale = (rho / steps) / norm
            delta = {k: delta[k] + scale * g.to(delta[k].dtype) for k, g in zip(d, grads)}
    finally:
        model.train(was_training)
    return delta


def perturbed_parameters(model: nn.Module, delta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """theta + delta as a new dict; the model's own tensors are untouched."""
    return {k: p.detach() + delta[k] for k, p in model.named_parameters()}
