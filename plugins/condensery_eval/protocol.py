"""The shared training protocol of evaluators: augmentation choice, seeds, lr selection."""

from __future__ import annotations

from typing import Literal

import torch
from condensery import (
    DSA,
    Options,
    RunContext,
    SyntheticSet,
    accuracy,
    crop_flip,
    make_generator,
    train_classifier,
)
from pydantic import Field

Augmentation = Literal["dsa", "crop-flip", "flip", "none"]


class TrainProtocol(Options):
    model: str | None = Field(None, description="network to train (default: the task model)")
    runs: int = Field(3, ge=1, description="fresh networks trained; mean ± std over them")
    epochs: int = Field(300, ge=1)
    lr: float = Field(0.01, gt=0, description="used unless the set carries a learned lr")
    lr_grid: list[float] | None = Field(None, description="if set, pick the lr on the validation split")
    use_learned_lr: bool = True
    batch_size: int = Field(256, ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    augment: Augmentation = "dsa"


def augmenter(kind: str):
    """The batched augmentation callable for a protocol (None for no augmentation)."""
    if kind == "dsa":
        return DSA()
    if kind == "crop-flip":
        return crop_flip
    if kind == "flip":
        return lambda x, g: crop_flip(x, g, pad=0)
    return None


def model_name(ctx: RunContext, protocol: TrainProtocol) -> str:
    return protocol.model or ctx.task.model.get("name", "convnet")


def train_once(
    ctx: RunContext, protocol: TrainProtocol, synset: SyntheticSet, lr: float, stream: tuple, labels: torch.Tensor
) -> torch.nn.Module:
    """Train one fresh network on ``synset`` with a seed derived from ``stream``."""
    gen = make_generator(ctx.runtime.seed, *stream)
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
    model = ctx.create_model(protocol.model)
    return train_classifier(
        model, synset.images, labels, epochs=protocol.epochs, lr=lr, generator=gen,
        batch_size=protocol.batch_size, momentum=protocol.momentum, weight_decay=protocol.weight_decay,
        augment=augmenter(protocol.augment), autocast=ctx.runtime.autocast,
    )


def choose_lr(ctx: RunContext, protocol: TrainProtocol, synset: SyntheticSet, labels: torch.Tensor, tag: str) -> tuple[float, dict]:
    """The training lr: learned, picked on the validation split, or the fixed option."""
    if protocol.use_learned_lr and synset.lr is not None:
        return float(synset.lr), {"lr_source": "learned"}
    if not protocol.lr_grid:
        return protocol.lr, {"lr_source": "fixed"}
    if len(ctx.data.val_y) == 0:
        from condensery import UserError

        raise UserError("lr_grid needs a validation split; set data.val_fraction above 0")
    scores = {}
    for lr in protocol.lr_grid:
        model = train_once(ctx, protocol, synset, lr, (tag, "lr-select", lr), labels)
        scores[lr] = accuracy(model, ctx.data.val_x, ctx.data.val_y, ctx.runtime.autocast)
    best = max(scores, key=lambda k: scores[k])
    return best, {"lr_source": "validation", "val_accuracy_by_lr": scores}
