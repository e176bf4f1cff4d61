"""The pixel synthesizer: learnable images optimised against a matcher's loss.

Images start from real images of their class (or Gaussian noise) and are optimised with
SGD or Adam; the matcher may add its own learnable tensors (e.g. a learned lr). The loop
checkpoints every ``runtime.checkpoint_every`` steps (images, optimizer, matcher state,
random streams) and resumes from the last checkpoint; a NaN/inf loss stops the run with
the step named and that checkpoint kept.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from condensery import (
    DivergenceError,
    RunContext,
    Synthesizer,
    SynthesizerOptions,
    SyntheticSet,
    load_optimizer_state,
    optimizer_state,
)
from pydantic import Field


class PixelOptions(SynthesizerOptions):
    iterations: int = Field(1000, ge=0, description="optimisation steps")
    lr: float = Field(1.0, gt=0, description="image learning rate")
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.5, ge=0, lt=1, description="SGD momentum (DC/DM use 0.5)")
    init: Literal["real", "noise"] = "real"
    log_every: int = Field(50, ge=1)


class PixelSynthesizer(Synthesizer):
    """Learnable pixels, class-ordered (``ipc`` images of class 0 first, then class 1, ...)."""

    Options: ClassVar[type[PixelOptions]] = PixelOptions
    uses_matcher = True
    CHECKPOINT = "pixel"

    def initial_images(self, ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor]:
        ipc, k = self.options.ipc, ctx.task.num_classes
        gen = ctx.generator("pixel-init")
        if self.options.init == "real":
            x, y = ctx.data.balanced_batch(ipc, gen)
            return x.clone(), y.clone()
        shape = (ipc * k, *ctx.task.image_shape)
        y = torch.arange(k, device=ctx.device).repeat_interleave(ipc)
        return torch.randn(shape, generator=gen).to(ctx.device), y

    def make_optimizer(self, params: list[dict]) -> torch.optim.Optimizer:
        if self.options.optimizer == "adam":
            return torch.optim.Adam(params, betas=(0.5, 0.9))
        return torch.optim.SGD(params, momentum=self.options.momentum)

    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        matcher = ctx.matcher
        x0, labels = self.initial_images(ctx)
        images = x0.detach().clone().requires_grad_(True)
        groups = [{"params": [images], "lr": self.options.lr}]
        groups += [{"params": [t], "lr": lr} for t, lr in matcher.parameters()]
        opt = self.make_optimizer(groups)
        start = self._resume(ctx, images, opt, matcher)
        every = ctx.runtime.options.checkpoint_every
        steps = range(start, self.options.iterations)
        for step in ctx.progress(steps, desc=f"distil ({type(matcher).__name__})", total=len(steps)):
            loss = matcher.loss(images, labels, step)
            if not torch.isfinite(loss):
                kept = ctx.checkpoints.path(self.CHECKPOINT)
                raise DivergenceError(
                    f"matcher loss became {loss.item()} at step {step} of stage 'synthesize'; "
                    f"last good checkpoint kept at {kept if kept.exists() else '(none yet)'}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            matcher.after_step(images, labels, step)
            if step % self.options.log_every == 0 or step == self.options.iterations - 1:
                ctx.log("synthesize", step, loss=loss.item())
            if (step + 1) % every == 0 and step + 1 < self.options.iterations and ctx.runtime.is_main:
                self._checkpoint(ctx, images, opt, matcher, step + 1)
        return self.result(ctx, images.detach(), labels, matcher)

    def result(self, ctx: RunContext, images: torch.Tensor, labels: torch.Tensor, matcher) -> SyntheticSet:
        lr = getattr(matcher, "learned_lr", None)
        return SyntheticSet(images, labels, lr=None if lr is None else float(lr()))

    # -- checkpoints ----------------------------------------------------------------
    def _checkpoint(self, ctx: RunContext, images, opt, matcher, step: int) -> None:
        tensors = {"images": images, **optimizer_state(opt)}
        tensors.update({f"matcher.{k}": v for k, v in matcher.state_dict().items()})
        ctx.checkpoints.save(self.CHECKPOINT, tensors, {"step": step})

    def _resume(self, ctx: RunContext, images, opt, matcher) -> int:
        loaded = ctx.checkpoints.load(self.CHECKPOINT)
        if loaded is None:
            return 0
        tensors, meta = loaded
        if tensors["images"].shape != images.shape:
            return 0  # a checkpoint of another configuration is ignored, not misused
        with torch.no_grad():
            images.copy_(tensors["images"].to(images.device))
        load_optimizer_state(opt, tensors)
        matcher.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("matcher.")})
        ctx.log("synthesize", int(meta["step"]), resumed=1.0)
        return int(meta["step"])
