"""Training networks and drawing real subsets under a run's protocol, shared by every analysis section."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import (
    RunContext,
    SyntheticSet,
    UserError,
    make_generator,
    seed_global_from,
    train_classifier,
)
from condensery.training import predict

from .run_loading import AnalysisOptions, Protocol, augmenter


class AnalysisBase:
    """What the three measurements share: the run, its protocol, training a network, drawing real subsets."""

    def __init__(self, ctx: RunContext, synset: SyntheticSet, protocol: Protocol, options: AnalysisOptions) -> None:
        self.ctx, self.syn, self.p, self.o = ctx, synset, protocol, options
        self.k = ctx.task.num_classes
        self.counts = torch.bincount(synset.hard_labels.long().cpu(), minlength=self.k).tolist()
        self.aug = augmenter(protocol.augment, ctx.task.image_shape)
        self._base: dict[str, Any] | None = None
        self.real_model: nn.Module | None = None

    # -- training ---------------------------------------------------------------
    def train(self, x: torch.Tensor, y: torch.Tensor, stream: tuple, epochs: int | None = None,
              lr: float | None = None) -> nn.Module:
        """One fresh task network on ``(x, y)``; its init and batches depend on ``stream`` only."""
        gen = make_generator(self.ctx.runtime.seed, "analyze", *stream)
        seed_global_from(gen)
        model = self.ctx.create_model(self.p.model)
        return train_classifier(
            model, x, y, epochs=epochs or self.p.epochs, lr=lr or self.p.lr, generator=gen,
            batch_size=self.p.batch_size, momentum=self.p.momentum, weight_decay=self.p.weight_decay,
            augment=self.aug, autocast=self.ctx.runtime.autocast, scaler=self.ctx.runtime.grad_scaler(),
        )

    def test_preds(self, model: nn.Module) -> torch.Tensor:
        return predict(model, self.ctx.data.test_x, autocast=self.ctx.runtime.autocast)

    def acc(self, preds: torch.Tensor) -> float:
        return float((preds == self.ctx.data.test_y).float().mean())

    def labels_like_set(self, y: torch.Tensor) -> torch.Tensor:
        """Real hard labels in the set's label format (one-hot when the set is soft)."""
        return F.one_hot(y, self.k).to(self.syn.labels.dtype) if self.syn.soft else y

    def real_subset(self, counts: list[int], stream: tuple, extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of ``counts[c] + extra`` distinct real images of each class, as two parts."""
        gen = self.ctx.generator("analyze", *stream)
        firsts, rests = [], []
        for c, n in enumerate(counts):
            idx = self.ctx.data.class_batch_indices(c, n + extra, gen)
            if len(idx) < n + extra:
                raise UserError(f"class '{self.ctx.task.class_names[c]}' has {len(idx)} training images, fewer than "
                                f"the {n + extra} asked for; lower --mix or analyse a smaller set")
            firsts.append(idx[:extra])
            rests.append(idx[extra:])
        return torch.cat(firsts), torch.cat(rests)

    def trained_accs(self, x: torch.Tensor, y: torch.Tensor, tag: str, **kw: Any) -> tuple[list[float], list[torch.Tensor]]:
        preds = [self.test_preds(self.train(x, y, (tag, "run", r), **kw)) for r in range(self.o.runs)]
        return [self.acc(p) for p in preds], preds

    def run_random_subset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The evaluators' one-draw random subset (``ctx.random_subset``, ``random_draws: one``);
        the evaluators' default draws per network instead, which ``fresh_draw_accs`` mirrors.
        An unbalanced set gets its own draw with the same images per class."""
        if len(set(self.counts)) == 1:
            rnd = self.ctx.random_subset(self.counts[0])
            return rnd.images, rnd.labels
        _, ridx = self.real_subset(self.counts, ("random",))
        return self.ctx.data.train_x[ridx], self.ctx.data.train_y[ridx]

    def fresh_draw_accs(self) -> list[float]:
        """One new random subset per seed: the spread includes which real images were drawn,
        which a single draw trained with several seeds hides (at 1 image per class it is large)."""
        d, accs = self.ctx.data, []
        for r in range(self.o.runs):
            _, idx = self.real_subset(self.counts, ("draw", r))
            accs.append(self.acc(self.test_preds(self.train(d.train_x[idx], d.train_y[idx], ("draw", r)))))
        return accs

    def base(self) -> dict[str, Any]:
        """The set and the same-size random real subset under the protocol (shared by all sections)."""
        if self._base is None:
            rx, ry = self.run_random_subset()
            s_acc, s_preds = self.trained_accs(self.syn.images, self.syn.labels, "set", lr=self.p.set_lr)
            r_acc, r_preds = self.trained_accs(rx, ry, "random")
            self._base = {"set": s_acc, "random": r_acc, "set_preds": s_preds, "random_preds": r_preds}
        return self._base



def row(setting: str, training: str, set_accs: list[float], real_accs: list[float], n: int) -> dict[str, Any]:
    s, r = summary(set_accs), summary(real_accs)
    return {"setting": setting, "training": training, "set": s, "random": r, "difference": s["mean"] - r["mean"],
            "images_compared": n}


def std(values: list[float]) -> float:
    return float(torch.tensor(values).std()) if len(values) > 1 else 0.0


def summary(values: list[float]) -> dict[str, Any]:
    return {"mean": sum(values) / len(values), "std": std(values), "values": values}
