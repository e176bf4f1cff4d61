"""Selection rules that pick real images per class in a feature space.

Features come from a network (a randomly initialised copy of the task model by default):
herding greedily matches the class mean, k-center greedily covers the class, k-means
takes the real image nearest each centroid. Random is the class-balanced random subset.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from condensery import RunContext, Synthesizer, SyntheticSet, seed_global_from
from condensery.models import embed_batched

from .options import RandomOptions, SelectionOptions


def herding(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy herding: each pick brings the running mean of picks closest to the class mean."""
    mu = features.mean(dim=0)
    chosen: list[int] = []
    total = torch.zeros_like(mu)
    available = torch.ones(len(features), dtype=torch.bool, device=features.device)
    for i in range(k):
        dist = ((mu - (total + features) / (i + 1)) ** 2).sum(dim=1)
        dist[~available] = float("inf")
        j = int(dist.argmin())
        chosen.append(j)
        total += features[j]
        available[j] = False
    return torch.tensor(chosen, device=features.device)


def kcenter(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy k-center: start nearest the mean, then always take the farthest point from the picks."""
    first = int(((features - features.mean(0)) ** 2).sum(1).argmin())
    chosen = [first]
    mind = ((features - features[first]) ** 2).sum(1)
    for _ in range(k - 1):
        j = int(mind.argmax())
        chosen.append(j)
        mind = torch.minimum(mind, ((features - features[j]) ** 2).sum(1))
    return torch.tensor(chosen, device=features.device)


def kmeans_plus_plus(features: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability proportional to squared distance."""
    n = len(features)
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [features[first]]
    d2 = ((features - features[first]) ** 2).sum(1)
    for _ in range(k - 1):
        probs = (d2 / d2.sum()).cpu() if float(d2.sum()) > 0 else torch.full((n,), 1.0 / n)
        j = int(torch.multinomial(probs, 1, generator=generator))
        centres.append(features[j])
        d2 = torch.minimum(d2, ((features - features[j]) ** 2).sum(1))
    return torch.stack(centres).clone()


def kmeans(features: torch.Tensor, k: int, generator: torch.Generator, iterations: int = 50) -> torch.Tensor:
    """Lloyd's k-means from k-means++ seeds, then the distinct real point nearest each centroid."""
    centroids = kmeans_plus_plus(features, k, generator)
    for _ in range(iterations):
        assign = torch.cdist(features, centroids).argmin(1)
        counts = torch.bincount(assign, minlength=k)
        new = torch.zeros_like(centroids).index_add_(0, assign, features)
        new = new / counts.clamp_min(1).unsqueeze(1).to(features.dtype)
        new[counts == 0] = centroids[counts == 0]
        if torch.allclose(new, centroids):
            break
        centroids = new
    dist = torch.cdist(centroids, features)
    chosen: list[int] = []
    for row in dist:  # nearest distinct real image per centroid (k is small)
        j = next(int(i) for i in row.argsort() if int(i) not in chosen)
        chosen.append(j)
    return torch.tensor(chosen, device=features.device)


class Selection(Synthesizer):
    """Base of feature-space selection: subclasses implement ``pick(features, k, generator)``."""

    Options: ClassVar[type[SelectionOptions]] = SelectionOptions

    def pick(self, features: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        """Classes are split over processes; each class draws from its own stream, so the
        picks do not depend on the number of processes."""
        ipc, name = self.options.ipc, type(self).__name__
        gen = ctx.generator("selection", name)
        seed_global_from(gen)
        model = ctx.create_model(self.options.feature_model).eval()
        picked = []
        for c in ctx.progress(ctx.runtime.split(range(ctx.task.num_classes), "select classes"), desc="select"):
            idx = ctx.data.class_indices[c]
            with ctx.runtime.autocast():
                feats = embed_batched(model, ctx.data.train_x[idx], self.options.batch_size).float()
            picked.append(idx[self.pick(feats, ipc, ctx.generator("selection", name, c))].tolist())
        idx = torch.tensor([i for share in ctx.runtime.gather(picked) for i in share],
                           dtype=torch.long, device=ctx.data.train_y.device)
        return SyntheticSet(ctx.data.train_x[idx].clone(), ctx.data.train_y[idx].clone(),
                            metadata={"indices": idx.tolist()})


class Herding(Selection):
    def pick(self, features, k, generator):
        return herding(features, k)


class KCenter(Selection):
    def pick(self, features, k, generator):
        return kcenter(features, k)


class KMeans(Selection):
    def pick(self, features, k, generator):
        return kmeans(features, k, generator)


class Random(Synthesizer):
    """The class-balanced random real subset (the baseline every result sits next to)."""

    Options: ClassVar[type[RandomOptions]] = RandomOptions

    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        idx = ctx.data.balanced_indices(self.options.ipc, ctx.generator("selection", "random"))
        return SyntheticSet(ctx.data.train_x[idx].clone(), ctx.data.train_y[idx].clone(),
                            metadata={"indices": idx.tolist()})
