"""The pixel synthesizer: learnable images optimised against a matcher's loss.

Images start from real images of their class (or Gaussian noise) and are optimised with
SGD or Adam; the matcher may add its own learnable tensors (e.g. a learned lr). The loop
checkpoints every ``runtime.checkpoint_every`` steps (images, optimizer, matcher state,
random streams) and resumes from the last checkpoint; a NaN/inf loss stops the run with
the step named and that checkpoint kept.

Over several processes, a matcher whose loss is a sum of independent per-class terms
(``class_separable = True``, e.g. distribution matching) gets each process's share of the
classes and the gradients are summed; any other matcher runs whole on every process.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from condensery import (
    DivergenceError,
    LoopCheckpoint,
    RunContext,
    Synthesizer,
    SyntheticSet,
    UserError,
    loop_fingerprint,
    random_subset_draw,
)
from condensery.task_space import check_set, to_task_space

from .options import PixelOptions


class PixelSynthesizer(Synthesizer):
    """Learnable pixels, class-ordered (``ipc`` images of class 0 first, then class 1, ...)."""

    Options: ClassVar[type[PixelOptions]] = PixelOptions
    uses_matcher = True
    CHECKPOINT = "pixel"

    def __init__(self, options: PixelOptions) -> None:
        super().__init__(options)
        #: the last images known finite and in range; written as ``last-sane.safetensors`` on divergence
        self.sane: torch.Tensor | None = None

    def initial_images(self, ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor]:
        ipc, k = self.options.ipc, ctx.task.num_classes
        if self.options.init_from is not None:
            return self.images_from_set(ctx, self.options.init_from)
        if self.options.init == "random-subset":
            x, y = random_subset_draw(ctx.data, ipc, ctx.runtime.seed)
            return x.clone(), y.clone()
        gen = ctx.generator("pixel-init")
        if self.options.init == "real":
            x, y = ctx.data.balanced_batch(ipc, gen)
            return x.clone(), y.clone()
        shape = (ipc * k, *ctx.task.image_shape)
        y = torch.arange(k, device=ctx.device).repeat_interleave(ipc)
        return torch.randn(shape, generator=gen).to(ctx.device), y

    def images_from_set(self, ctx: RunContext, path: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images of a saved set, checked against this run, in class order.

        Continuing a set is only meaningful in the space it was optimised in, so a set
        whitened differently (ZCA on/off, another fit) is refused rather than silently mixed.
        """
        ipc, k = self.options.ipc, ctx.task.num_classes
        synset = SyntheticSet.load(path)
        check_set(synset, ctx.task, path)  # the checks condensery eval applies
        synset = to_task_space(synset, ctx.task)
        fix = "point synthesizer.init_from at a set of this dataset and ipc, or drop it"
        if synset.soft:
            raise UserError(f"synthesizer.init_from '{path}' has soft labels; the pixel synthesizer starts from hard-labelled sets; {fix}")
        counts = torch.bincount(synset.labels.long(), minlength=k)
        if len(counts) != k or bool((counts != ipc).any()):
            raise UserError(f"synthesizer.init_from '{path}' has {counts.tolist()} images per class, "
                            f"this run wants {ipc} for each of {k} classes; {fix}")
        zca = ctx.data.zca.info() if ctx.data.zca is not None else None
        if synset.metadata.get("zca") != zca:
            raise UserError(f"synthesizer.init_from '{path}' was whitened with {synset.metadata.get('zca')}, "
                            f"this run's data with {zca}; {fix}")
        order = torch.argsort(synset.labels.long(), stable=True)
        x = synset.images[order].to(ctx.device, torch.float32)
        y = synset.labels[order].long().to(ctx.device)
        return x.clone(), y.clone()

    def make_optimizer(self, params: list[dict]) -> torch.optim.Optimizer:
        if self.options.optimizer == "adam":
            return torch.optim.Adam(params, betas=(0.5, 0.9))
        return torch.optim.SGD(params, momentum=self.options.momentum)

    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        matcher, rt = ctx.matcher, ctx.runtime
        x0, labels = self.initial_images(ctx)
        images = x0.detach().clone().requires_grad_(True)
        extras = matcher.parameters()
        groups = [{"params": [images], "lr": self.options.lr}]
        groups += [{"params": [t], "lr": lr} for t, lr in extras]
        opt = self.make_optimizer(groups)
        learnables = [images, *(t for t, _ in extras)]
        rows = self._class_share(ctx, labels)
        loop = LoopCheckpoint(ctx, self.CHECKPOINT, loop_fingerprint(ctx, self.options, images=images))
        start = self._resume(ctx, loop, images, opt, matcher)
        self.sane = images.detach().clone()
        every = rt.options.checkpoint_every
        scaler = rt.grad_scaler()  # fp16: the image gradients are scaled, summed over processes, then unscaled
        steps = range(start, self.options.iterations)
        for step in ctx.progress(steps, desc=f"distil ({type(matcher).__name__})", total=len(steps)):
            loss = self.step_loss(matcher, images, labels, step, rows)
            total = loss.detach().clone() if rows is None else rt.sum_(loss.detach().float().clone())
            if not torch.isfinite(total):  # the same verdict on every process
                self._diverged(ctx, f"matcher loss became {total.item()}", step, start, labels, updated=step > start)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if rows is not None:
                rt.sum_grads(learnables)  # the loss is a sum over classes: so is its gradient
            frozen = self.frozen_rows(labels, step)
            if frozen is not None:  # as if detached: no gradient, and no optimizer state moves them
                images.grad[frozen] = 0
                kept = images.detach()[frozen].clone()
            scaler.step(opt)
            scaler.update()
            if frozen is not None:
                with torch.no_grad():
                    images[frozen] = kept
            if not torch.isfinite(images).all():
                self._diverged(ctx, "the synthetic images became non-finite", step, start, labels)
            matcher.after_step(images, labels, step)
            if step % self.options.log_every == 0 or step == self.options.iterations - 1:
                ctx.log("synthesize", step, loss=total.item())
            if (step + 1) % every == 0 and step + 1 < self.options.iterations:
                self._check_sane(ctx, images, labels, step, start)  # never checkpoint images that blew up
                if rt.is_main:
                    loop.save(step + 1, {"images": images}, optimizers=[opt], stateful=[matcher, *self.loop_state()])
                    self.sane = images.detach().clone()
        return self.result(ctx, images.detach(), labels, matcher)

    def step_loss(self, matcher, images: torch.Tensor, labels: torch.Tensor, step: int,
                  rows: torch.Tensor | None) -> torch.Tensor:
        """The matcher loss of one step on this process's ``rows`` (None: every row)."""
        if rows is None:
            return matcher.loss(images, labels, step)
        if len(rows):
            return matcher.loss(images[rows], labels[rows], step)
        return images.sum() * 0.0  # more processes than classes: this one only adds zeros

    def loop_state(self) -> list:
        """Objects besides the matcher whose ``state_dict`` the loop checkpoints and restores
        (a subclass's own schedule, e.g. the adaptive prefix selection); default: none."""
        return []

    def frozen_rows(self, labels: torch.Tensor, step: int) -> torch.Tensor | None:
        """Rows whose pixels ``step`` must leave exactly as they are (None: every row learns).

        Zeroing their gradient alone would still let SGD momentum or Adam's moments move
        them, so the loop also writes their pixels back after the optimizer step.
        """
        return None

    def _class_share(self, ctx: RunContext, labels: torch.Tensor) -> torch.Tensor | None:
        """Rows of this process's classes, if the matcher's loss is a sum over classes.

        Each process then computes the loss of its classes only (its share of the real
        batch, too) and the gradients are summed over processes, so every process takes
        the same step on the same images. Other matchers see every class on every process.
        """
        if not ctx.matcher.class_separable:
            return None
        mine = ctx.runtime.split(range(ctx.task.num_classes), "synthesize classes")
        if ctx.runtime.num_processes == 1:
            return None
        share = torch.tensor(mine, dtype=labels.dtype, device=labels.device)
        return torch.isin(labels, share).nonzero().flatten()

    #: |pixel| beyond which images in the normalised space have blown up (real data is ~N(0, 1))
    SANE_LIMIT = 1e4

    def _check_sane(self, ctx: RunContext, images: torch.Tensor, labels: torch.Tensor, step: int, start: int) -> None:
        top = float(images.detach().abs().max())
        if top > self.SANE_LIMIT:
            self._diverged(ctx, f"the synthetic images grew to |x| = {top:.3g}", step, start, labels)

    def _diverged(self, ctx: RunContext, what: str, step: int, start: int = 0,
                  labels: torch.Tensor | None = None, updated: bool = True) -> None:
        """Stop with the step, the likely cause and a command that continues from the last
        sane images (``last-sane.safetensors``, finite and in range) at a lower lr."""
        lr = self.options.lr
        if not updated:
            cause = ("likely cause: the data or the model (the loss was not finite before any update); check the "
                     "data and the model options")
        else:
            cause = f"likely cause: the step size (image lr {lr:g}; the last sane images are from before step {step})"
        kept = ctx.checkpoints.path(self.CHECKPOINT)
        hint = ""
        sane = self.sane
        if labels is not None and sane is not None and ctx.runtime.is_main and ctx.run_dir is not None:
            path = Path(ctx.run_dir) / "last-sane.safetensors"
            SyntheticSet(sane.cpu(), labels.cpu(), metadata={
                "method": "pixel", "num_classes": ctx.task.num_classes, "class_names": ctx.task.class_names,
                "mean": ctx.task.mean, "std": ctx.task.std,
                **({"zca": ctx.data.zca.info()} if ctx.data.zca is not None else {}),
                "note": f"the last sane images before divergence at step {step}"}).save(path)
            hint = (f"; continue from the last sane images with: condensery run {Path(ctx.run_dir) / 'recipe.yaml'} "
                    f"-o {ctx.run_dir}-lr{lr / 10:g} --set synthesizer.lr={lr / 10:g} --set synthesizer.init_from={path}")
        raise DivergenceError(
            f"{what} at step {step} of stage 'synthesize'; {cause}; "
            f"last good checkpoint kept at {kept if kept.exists() else '(none yet)'}{hint}"
        )

    def result(self, ctx: RunContext, images: torch.Tensor, labels: torch.Tensor, matcher) -> SyntheticSet:
        lr = matcher.learned_lr()
        learned = matcher.learned_labels()
        meta = {"labels": "learned"} if learned is not None else {}
        return SyntheticSet(images, labels if learned is None else learned.float(),
                            lr=None if lr is None else float(lr), metadata=meta)

    def _resume(self, ctx: RunContext, loop: LoopCheckpoint, images: torch.Tensor, opt, matcher) -> int:
        """The step to start at, with ``images``, ``opt`` and ``matcher`` restored from ``loop``'s checkpoint."""
        saved = loop.load()
        if saved is None:
            return 0
        with torch.no_grad():
            images.copy_(saved.tensors["images"].to(images.device))
        saved.restore(optimizers=[opt], stateful=[matcher, *self.loop_state()])
        saved.announce()
        ctx.log("synthesize", saved.step, resumed=1.0)
        return saved.step
