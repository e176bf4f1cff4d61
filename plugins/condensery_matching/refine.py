"""A few pixel steps of a matcher on chosen rows of a set: generation-time refinement and extension.

Both any-size generators use it: ``--option refine_steps=T`` takes T steps of the generator's
stored matcher from a generated set (all rows trainable), and a pool asked for more images
than it holds optimises only the new rows with the pool frozen (SeqMatch-style). The
matcher is a fresh copy prepared on the generation context, so a set depends only on the
generator, the size, the seed and the options, not on what a matcher drew before.
"""

from __future__ import annotations

import torch
from condensery import DivergenceError, Matcher, RunContext, UserError, backward_step

#: matcher step indices of generation-time refinement: other feature draws than a run's
REFINE_STEP = 3_000_000


def refine_images(ctx: RunContext, matcher: Matcher | None, images: torch.Tensor, labels: torch.Tensor, steps: int,
                  lr: float, optimizer: str = "sgd", momentum: float = 0.5,
                  trainable: torch.Tensor | None = None) -> torch.Tensor:
    """``images`` after ``steps`` optimiser steps on ``matcher``'s loss; only ``trainable`` rows move.

    ``trainable`` is a boolean ``[N]`` mask (default: every row). Frozen rows still enter the
    loss (the new images are judged together with the pool they join) but get no update.
    """
    if steps <= 0:
        return images
    if matcher is None:
        raise UserError("refinement needs the generator's matcher; its config.json stores none (recipe.matcher)")
    fresh = type(matcher)(matcher.options)
    fresh.prepare(ctx)
    mask = torch.ones(len(images), dtype=torch.bool, device=images.device) if trainable is None else trainable
    frozen = images.detach()[~mask]
    moving = images.detach()[mask].clone().requires_grad_(True)
    order = torch.cat([(~mask).nonzero().flatten(), mask.nonzero().flatten()])
    restore = torch.argsort(order)
    params = [{"params": [moving], "lr": lr}] + [{"params": [t], "lr": r} for t, r in fresh.parameters()]
    opt = torch.optim.Adam(params, betas=(0.5, 0.9)) if optimizer == "adam" else torch.optim.SGD(params, momentum=momentum)
    scaler = ctx.runtime.grad_scaler()
    for step in range(steps):
        full = torch.cat([frozen, moving])[restore]
        loss = fresh.loss(full, labels, REFINE_STEP + step)
        if not torch.isfinite(loss):
            raise DivergenceError(f"refinement loss became {loss.item()} at step {step}; lower refine_lr")
        opt.zero_grad(set_to_none=True)
        backward_step(loss, opt, scaler)
        fresh.after_step(full.detach(), labels, REFINE_STEP + step)
    return torch.cat([frozen, moving.detach()])[restore]
