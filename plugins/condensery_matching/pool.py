"""Nested pools: one distillation whose every per-class prefix is itself a good set.

After "Multisize Dataset Condensation" (He et al., ICLR 2024), reimplemented from the
paper's description. A plain set condensed for K images per class degrades badly when
only its first k are kept ("subset degradation"). The ``multisize`` synthesizer optimises
a class-ordered pool of K images per class with any pixel matcher, and at every step adds
the matcher loss of a few *prefixes* (the first k images of every class) to the loss of
the full pool, so the images are ordered: early ones must work alone, later ones add to them.

Choices made here:
- prefix sizes (``prefix_sampling``): ``prefix_samples`` distinct sizes per step, drawn from
  1..K-1 from a stream of the step (a resumed run draws the same sizes); log-uniformly by
  default (P(k) ~ 1/k), since the small prefixes are the fragile ones: on digits 5-9 (K = 50,
  DM, docs/results.md) it lifted the 1-per-class prefix from 85.3 % (uniform) to 88.8 % at no
  cost at larger sizes. ``all`` trains every prefix every step: an image at position p then
  gets the gradient of every term k >= p each step, as a per-size run of k gets its own each
  step, where a drawn size reaches a mid-pool image in a few per cent of the steps (CIFAR-10
  5-9, K = 50, two seeds: +1.6 / +1.5 points at IPC 7 / 10 over log-uniform, but -1.5 at the
  full IPC 50, docs/results.md); under DM it costs no more forward passes (``subset_losses``).
  ``adaptive`` is the paper's "most learnable subset" instead: one size per
  ``adaptive_period`` steps, smaller sizes learned earlier frozen (``adaptive.py`` states the
  rule);
- weighting (``prefix_weighting``): every term weighs 1 by default, so a step's loss is the
  sum. DM's gradient on an image of a k-per-class term is 1/k of its class-mean gap's, so the
  50-image term moves its images little at the lr of a small prefix; ``size`` weighs each term
  by its k, which removes that 1/k (the gap itself still shrinks with k: measured by
  ``studies/prefix_gradient_study.py``, docs/results.md). It does not buy accuracy: with
  ``all`` on CIFAR-10 5-9 it moved IPC 7-23 by -0.5 to +0.6 points and cost IPC 1 6.2, so
  ``none`` stays the default;
- the matcher computes the terms through ``Matcher.subset_losses``, i.e. one network and one
  real batch per step for all of them (the default loops over ``loss``).

The run saves a ``pool`` generator (``RUN_DIR/generator/``): ``generate --ipc k`` returns the
prefix for k <= K, bit for bit; for k > K it extends the pool by optimising only the new
images with the pool frozen (the stored matcher, as many steps as the pool run unless
``extend_iterations``), and ``refine_steps`` takes pixel steps of the stored matcher from
the generated set.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import torch
from condensery import (
    Generator,
    RunContext,
    SyntheticSet,
    UserError,
    make_generator,
    random_subset_draw,
)
from condensery.api.files import read_safetensors
from condensery.generators import check_config, save_generator, task_config
from safetensors.torch import save_file

from .adaptive import AdaptiveSelection, PrefixEmbedding
from .options import MultisizeOptions, PoolGenerateOptions
from .pixel import PixelSynthesizer
from .refine import refine_images

WEIGHTS = "pool.safetensors"


def positions(labels: torch.Tensor) -> torch.Tensor:
    """Each row's rank among the rows of its class (0 for the first image of a class)."""
    classes = (labels if labels.dim() == 1 else labels.argmax(dim=1)).long()
    order = torch.argsort(classes, stable=True)  # rows grouped by class, each group in set order
    counts = torch.bincount(classes)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.empty_like(classes)
    pos[order] = torch.arange(len(classes), device=classes.device) - starts[classes[order]]
    return pos


def prefix_rows(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Rows of the first ``k`` images of every class, in the set's (class) order."""
    return (positions(labels) < k).nonzero().flatten()


def draw_prefix_sizes(seed: int, step: int, pool_ipc: int, count: int, sampling: str) -> list[int]:
    """``count`` distinct prefix sizes in 1..K-1 for ``step`` (sorted; all of them for ``all``); none when K is 1."""
    candidates = list(range(1, pool_ipc))
    if sampling == "all":
        return candidates
    count = min(count, len(candidates))
    if count == 0:
        return []
    gen = make_generator(seed, "multisize-prefixes", step)
    if sampling == "log-uniform":  # P(k) proportional to 1/k: small sizes drawn more often
        weights = torch.tensor([1.0 / k for k in candidates], dtype=torch.float64)
    else:
        weights = torch.ones(len(candidates), dtype=torch.float64)
    picks = torch.multinomial(weights, count, replacement=False, generator=gen)
    return sorted(candidates[i] for i in picks.tolist())


class MultisizeSynthesizer(PixelSynthesizer):
    """A pool of ``ipc`` images per class whose every prefix is trained to be a set (``pool`` generator)."""

    Options: ClassVar[type[MultisizeOptions]] = MultisizeOptions
    CHECKPOINT = "multisize"

    #: the adaptive selection of this run (``prefix_sampling: adaptive``), else None
    selection: AdaptiveSelection | None = None

    def prefix_sizes(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> list[int]:
        """The prefix sizes whose terms ``step`` adds to the full pool's."""
        o = self.options
        if self.selection is None:
            return draw_prefix_sizes(self.seed, step, o.ipc, o.prefix_samples, o.prefix_sampling)
        size = self.selection.size_at(step, images, labels)
        if size is not None and step % o.adaptive_period == 0:
            self.ctx.log("synthesize", step, prefix_selected=size, prefix_frozen=self.selection.frozen())
        return [] if size is None else [size]

    def step_loss(self, matcher, images: torch.Tensor, labels: torch.Tensor, step: int,
                  rows: torch.Tensor | None) -> torch.Tensor:
        o = self.options
        sizes = [o.ipc, *self.prefix_sizes(images, labels, step)]
        subsets = [torch.arange(len(images), device=images.device)] + [prefix_rows(labels, k) for k in sizes[1:]]
        if rows is not None:
            kept = [(k, s[torch.isin(s, rows)]) for k, s in zip(sizes, subsets)]
            kept = [(k, s) for k, s in kept if len(s)]
            if not kept:
                return images.sum() * 0.0
            sizes, subsets = [k for k, _ in kept], [s for _, s in kept]
        losses = matcher.subset_losses(images, labels, step, subsets)
        if o.prefix_weighting == "size":  # a term of k per class weighs k: DM's 1/k per image is undone
            losses = [loss * k for k, loss in zip(sizes, losses)]
        return torch.stack(losses).sum()

    def loop_state(self) -> list:
        return [] if self.selection is None else [self.selection]

    def frozen_rows(self, labels: torch.Tensor, step: int) -> torch.Tensor | None:
        frozen = 0 if self.selection is None else self.selection.frozen()
        return prefix_rows(labels, frozen) if frozen else None

    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        self.seed, self.ctx = ctx.runtime.seed, ctx
        o = self.options
        self.selection = None
        if o.prefix_sampling == "adaptive":
            embedding = PrefixEmbedding(ctx)

            def measure(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
                classes = (labels if labels.dim() == 1 else labels.argmax(dim=1)).long()
                return embedding.distances(images, classes, positions(labels), o.ipc)

            self.selection = AdaptiveSelection(o.ipc, o.adaptive_period, measure)
        synset = super().synthesize(ctx)
        synset.metadata.update(pool_ipc=o.ipc, nested=True)
        adaptive = {}
        if self.selection is not None:
            adaptive = {"adaptive_period": o.adaptive_period, "prefix_selected": list(self.selection.selected)}
            synset.metadata.update(adaptive)
        if ctx.run_dir is not None and ctx.runtime.is_main:
            pool = PoolGenerator({}, synset.images.detach().cpu(), synset.labels.detach().cpu(), synset.lr)
            pixel = {"iterations": o.iterations, "lr": o.lr, "optimizer": o.optimizer, "momentum": o.momentum}
            save_generator(pool, ctx.run_dir / "generator",
                           {**task_config(ctx), "pool_ipc": o.ipc, "lr": synset.lr, "pixel": pixel,
                            "prefix_samples": o.prefix_samples, "prefix_sampling": o.prefix_sampling,
                            "prefix_weighting": o.prefix_weighting, **adaptive})
        ctx.runtime.wait()
        return synset


@cache
def _pool_schema() -> Any:
    """The keys of a pool folder's ``config.json`` that ``PoolGenerator`` reads."""
    from pydantic import BaseModel, ConfigDict, Field

    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")

    class Pixel(Loose):
        iterations: int = Field(100, ge=1)
        lr: float = Field(1.0, gt=0)
        optimizer: str = "sgd"
        momentum: float = 0.5

    class Task(Loose):
        num_classes: int = Field(ge=1)

    class PoolConfig(Loose):
        task: Task
        pool_ipc: int = Field(ge=1)
        lr: float | None = None
        pixel: Pixel = Pixel()

    return PoolConfig


class PoolGenerator(Generator):
    """The nested pool: prefixes for sizes up to K, a frozen-pool extension above it."""

    Options: ClassVar[type[PoolGenerateOptions]] = PoolGenerateOptions

    def __init__(self, config: dict[str, Any], images: torch.Tensor, labels: torch.Tensor,
                 lr: float | None = None) -> None:
        super().__init__(config)
        self.images, self.labels, self.lr = images, labels, lr

    @property
    def pool_ipc(self) -> int:
        return int(self.config["pool_ipc"])

    def requires_data(self, ipc: int, options: PoolGenerateOptions) -> bool:
        return ipc > self.pool_ipc or options.refine_steps > 0

    def generate(self, ipc: int, seed: int = 0, ctx: RunContext | None = None,
                 options: PoolGenerateOptions | None = None) -> SyntheticSet:
        o = options or self.Options()
        k = min(ipc, self.pool_ipc)
        rows = prefix_rows(self.labels, k)
        x, y = self.images[rows].clone(), self.labels[rows].clone()
        pixel = self.config.get("pixel", {})
        lr = o.refine_lr or float(pixel.get("lr", 1.0))
        opt, momentum = pixel.get("optimizer", "sgd"), float(pixel.get("momentum", 0.5))
        extended = max(0, ipc - self.pool_ipc)
        if extended or o.refine_steps:
            if ctx is None:
                raise UserError(f"generating {ipc} per class with these options needs the real data; "
                                "call it through `condensery generate`, which opens the stored recipe's task")
            x, y = x.to(ctx.device), y.to(ctx.device)
        if extended:
            x, y, trainable = self.extend(ctx, x, y, ipc, seed)
            steps = o.extend_iterations or int(pixel.get("iterations", 100))
            x = refine_images(ctx, ctx.matcher, x, y, steps, lr, opt, momentum, trainable)
        if o.refine_steps:
            x = refine_images(ctx, ctx.matcher, x, y, o.refine_steps, lr, opt, momentum)
        meta = {"method": "multisize", "pool_ipc": self.pool_ipc, "prefix": k, "extended": extended,
                "refine_steps": o.refine_steps}
        return SyntheticSet(x.detach().cpu(), y.detach().cpu(), lr=self.lr, metadata=meta)

    def extend(self, ctx: RunContext, x: torch.Tensor, y: torch.Tensor, ipc: int,
               seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The pool plus ``ipc - K`` fresh real images per class, class-ordered, and the new rows' mask."""
        if y.dim() == 2:
            raise UserError("extending a pool with learned (soft) labels is not supported; ask for at most "
                            f"{self.pool_ipc} per class, or rerun the multisize recipe with a larger synthesizer.ipc")
        new_x, new_y = random_subset_draw(ctx.data, ipc - self.pool_ipc, seed, "pool-extend")
        xs, ys, masks = [], [], []
        for c in range(ctx.task.num_classes):
            old, new = y == c, new_y == c
            xs += [x[old], new_x[new]]
            ys += [y[old], new_y[new]]
            masks += [torch.zeros(int(old.sum()), dtype=torch.bool), torch.ones(int(new.sum()), dtype=torch.bool)]
        return torch.cat(xs), torch.cat(ys), torch.cat(masks).to(x.device)

    def save_weights(self, folder: Path) -> dict[str, Any]:
        save_file({"images": self.images.float().contiguous(), "labels": self.labels.contiguous()},
                  str(folder / WEIGHTS), metadata={"type": self.name})
        return {}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> PoolGenerator:
        check_config(folder / "config.json", config, _pool_schema())
        path = folder / WEIGHTS
        if not path.is_file():
            raise UserError(f"'{folder}' lacks {WEIGHTS}; the pool generator folder is incomplete")
        tensors, _ = read_safetensors(path)
        if "images" not in tensors or "labels" not in tensors:
            raise UserError(f"'{path}' lacks the images or labels tensor; rerun the multisize recipe")
        images, labels = tensors["images"], tensors["labels"]
        k, pool_ipc = int(config["task"]["num_classes"]), int(config["pool_ipc"])
        if images.dim() != 4 or len(images) != k * pool_ipc or len(labels) != len(images):
            raise UserError(f"'{path}' holds {len(images)} images for {k} classes x {pool_ipc}; the folder is corrupt")
        if not bool(torch.isfinite(images).all()):
            raise UserError(f"'{path}' holds non-finite pixels; the folder is corrupt, rerun the multisize recipe")
        lr = config.get("lr")
        return cls(config, images, labels, None if lr is None else float(lr))
