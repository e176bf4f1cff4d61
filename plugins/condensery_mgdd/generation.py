"""From a generator to a set: G(X0) for X0 the random subset of a seed, deterministically.

``generate_set`` is what a run's final set, ``condensery generate`` and the studies call; the
matcher-gradient inputs of a gradient-reading or unrolled refiner come from feature draws
reserved for generation (``GRADIENT_STEP``, ``GENERATION_STEP``), never the loss's.
"""

from __future__ import annotations

from typing import Any

import torch
from condensery import (
    RealData,
    RunContext,
    SyntheticSet,
    UserError,
    make_generator,
    random_subset_draw,
)

from .generator import GradientFn, MetaGenerator
from .tasks import KRRLabeler

GRADIENT_STEP = 1_000_000  # matcher step of the input gradient: other feature networks than the loss's
GENERATION_STEP = 2_000_000  # and at generation: one fixed draw, so a seed gives one set


def loss_gradient(matcher: Any, x0: torch.Tensor, y0: torch.Tensor, step: int) -> torch.Tensor:
    """The matcher-loss gradient at X0, scaled to RMS 1 per image: the refiner's second input.

    Why: measured on CIFAR-10 classes 5-9 (docs/results.md, MGDD), a refiner that sees X0
    alone did not lower the krr loss of a *new* draw at all, while one normalised gradient
    step X0 - 0.1 g (g from feature networks the loss never uses) lowered it from 0.426 to
    0.374: what improves a set depends on the draw, and the gradient carries that.
    """
    g = gradient_fn(matcher, y0, step)(x0, 0).float()
    return g / (g.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-12)


def gradient_fn(matcher: Any, y0: torch.Tensor, first_step: int) -> GradientFn:
    """``grad_fn(x, t)`` for the unrolled refiner: the raw matcher-loss gradient at ``x``.

    Step ``t`` uses the matcher's feature networks of ``first_step + t``: a fresh draw per
    step, as pixel optimisation with ``resample_every: 1`` sees.
    """
    def grad_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(matcher.loss(x, y0, first_step + t), x)
        return g.detach()

    return grad_fn


def run_generator(gen: MetaGenerator, matcher: Any, x0: torch.Tensor, y0: torch.Tensor, ipc: int,
                  first_step: int) -> torch.Tensor:
    """``G(X0)``; a generator that reads the matcher's gradient gets it from feature draw ``first_step`` on."""
    grad = loss_gradient(matcher, x0, y0, first_step) if gen.gradient_input else None
    grad_fn = gradient_fn(matcher, y0, first_step) if gen.refine_steps else None
    return gen(x0, y0, ipc, grad=grad, grad_fn=grad_fn)


def generate_set(gen: MetaGenerator, ctx: RunContext, ipc: int, seed: int, labels: str = "hard",
                 labeler: KRRLabeler | None = None, refine: bool = True, matcher: Any = None) -> SyntheticSet:
    """``ipc`` images per class from ``G(X0)``; X0 the random subset of ``seed``: deterministic.

    ``refine=False`` returns X0 itself (what the generator starts from). Runs in full
    precision without autocast so a given seed gives the same set whatever the run's
    mixed-precision setting. A gradient-input generator needs ``matcher`` (a fresh copy is
    prepared here, so the set does not depend on what the matcher drew before).
    """
    data: RealData = ctx.data
    smallest = min(data.class_count(c) for c in range(data.num_classes))
    if ipc > smallest:
        raise UserError(f"--ipc {ipc} exceeds the smallest class ({smallest} real images to start from); lower it")
    # X0 is the evaluators' random subset of this seed: "generator vs random subset" is then
    # paired, the difference being what the refinement adds, not the luck of another draw
    # (two draws of 10 images per class differ by up to 4 points on CIFAR-10)
    x0, y0 = random_subset_draw(data, ipc, seed)
    x = x0
    if refine:
        fresh = None
        if gen.reads_gradient:
            if matcher is None:
                raise UserError("this generator refines with the matcher's gradient; its config.json names no matcher")
            fresh = type(matcher)(matcher.options)
            fresh.prepare(ctx)
        was_training = gen.training
        gen.eval()
        with torch.no_grad():
            x = run_generator(gen, fresh, x0, y0, ipc, GENERATION_STEP).float()
        gen.train(was_training)
    y = y0
    metadata: dict[str, Any] = {"labels": labels, "generator_ipc": ipc, "refined": refine}
    classes = None
    if labels == "krr":
        if labeler is None:
            raise UserError("krr labels need the KRR label solve; it was not set up")
        y = labeler.labels(x0, 0, make_generator(seed, "mgdd-generate-labels", ipc))
        # regression targets, not probabilities; the random arm is solved by the same solver
        classes = y0
        metadata.update(label_kind="regression", label_solver=labeler.solver_record())
    return SyntheticSet(x.detach(), y.detach(), metadata=metadata, classes=classes)
