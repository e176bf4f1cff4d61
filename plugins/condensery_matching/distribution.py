"""Distribution matching (DM, Zhao & Bilen 2023), reimplemented.

Each step draws a freshly initialised network and, per class, pulls the mean embedding of
the synthetic images toward the mean embedding of a real batch of that class, with the
same DSA transform per class on both sides. The images of all classes go through the network
in chunks of ``chunk`` (the real ones without gradients); per-class means are scatter-sums.
Per-sample normalisation makes each embedding, and each image's gradient, independent of the
chunking (bit for bit on the CPU, tested; a GPU may pick another convolution algorithm per
batch size), so only the peak memory changes: one chunk's transient activations, not all
classes' (CIFAR-10, 256 real per class, width 128: 1.3 GB per layer output at once, 0.13 GB
per chunk of 256; the process peak fell from 3.5 to about 1.2 GB, BENCHMARKS.md).

The loss is a sum of independent per-class terms, so it is computed over the classes
present in ``labels``: a process of a multi-process run embeds only its share of the
classes (real and synthetic). The random draws still cover every class, so the share
does not change what is drawn. Batch norm in train mode couples classes through batch
statistics, so with it the matcher does not declare itself class-separable.

DM is first order throughout (the embeddings' gradient to the images), so with
``runtime.compile`` both sides' embeddings go through ``torch.compile``; the fresh network
of every step reuses the graph compiled at the first (``ctx.runtime.compiled``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from condensery import Matcher, Options, RunContext
from condensery.models import embed
from condensery.training import seed_global

from .common import class_means, dsa_from, siamese_batches, synthesis_steps
from .options import DistributionOptions


class DistributionMatcher(Matcher):
    Options: ClassVar[type[Options]] = DistributionOptions

    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        self.gen = ctx.generator("matcher", "distribution")
        self.dsa = dsa_from(self.options)
        probe = ctx.create_model(self.options.model)
        self.class_separable = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in probe.modules())
        self.expected_steps = synthesis_steps(ctx)

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        real_means, emb_syn = self._embeddings(images, labels, step)
        diff = real_means - class_means(emb_syn, labels, self.ctx.task.num_classes)
        return (diff[labels.unique()] ** 2).sum()  # only this process's share of classes

    def subset_losses(self, images: torch.Tensor, labels: torch.Tensor, step: int,
                      subsets: list[torch.Tensor]) -> list[torch.Tensor]:
        """One network, one real batch and one DSA draw for every subset (nested pools).

        A subset's synthetic embeddings are rows of the full set's (the per-class DSA draw
        is the same for every image of a class), so k prefixes cost one forward pass.
        """
        real_means, emb_syn = self._embeddings(images, labels, step)
        k = self.ctx.task.num_classes
        out = []
        for idx in subsets:
            lab = labels[idx]
            diff = real_means - class_means(emb_syn[idx], lab, k)
            out.append((diff[lab.unique()] ** 2).sum())
        return out

    def _embeddings(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-class mean real embedding ``[K, D]`` and the synthetic embeddings of this step."""
        ctx = self.ctx
        k = ctx.task.num_classes
        seed_global(ctx.runtime.seed, "dm-net", step)
        net = ctx.create_model(self.options.model)
        net.train()
        for p in net.parameters():
            p.requires_grad_(False)
        real, real_y, syn = siamese_batches(
            ctx.data, images, labels, self.options.batch_real, self.gen, self.dsa, present_classes_only=True
        )
        embed_net = ctx.runtime.compiled(net, embed, passes=self.expected_steps)
        with ctx.runtime.autocast():
            with torch.no_grad():  # in chunks: peak memory of one chunk's activations, not of all classes'
                emb_real = self._embed(embed_net, real)
            emb_syn = self._embed(embed_net, syn)
        return class_means(emb_real, real_y, k), emb_syn

    def _embed(self, embed_net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """``embed_net`` (the network's ``embed``) in chunks of ``chunk`` images; in one pass when
        batch norm couples the batch."""
        n = self.options.chunk if self.class_separable else max(len(x), 1)
        return torch.cat([embed_net(x[i:i + n]).float() for i in range(0, len(x), n)])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "gen" in state:
            self.gen.set_state(state["gen"])
