"""The shared training protocol of evaluators: augmentation choice, seeds, staged training,
lr selection on validation, and runs spread over processes. The random arm's per-network draws
are in ``random_arm`` (``draw_record`` and ``subject_for_run`` are public through this
module); the random subset itself is the core's ``condensery.evaluation.random_like``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch
from condensery import DivergenceError, RunContext, SyntheticSet, UserError, train_classifier
from condensery.data import DSA, crop_flip
from condensery.training import accuracy, seed_global

from .options import TrainProtocol
from .random_arm import draw_record, subject_for_run  # noqa: F401  (public here: random_arm is private to this plugin)

T = TypeVar("T")


def augmenter(kind: str):
    """The batched augmentation callable for a protocol (None for no augmentation)."""
    if kind == "dsa":
        return DSA()
    if kind == "dsa-paper":
        return DSA(variant="paper")
    if kind == "crop-flip":
        return crop_flip
    if kind == "flip":
        return lambda x, g: crop_flip(x, g, pad=0)
    return None


def model_name(ctx: RunContext, protocol: Any) -> str:
    return protocol.model or ctx.task.model.get("name", "convnet")


def seed_torch(stream: tuple, seed: int) -> torch.Generator:
    """A generator for ``stream``; also seeds torch's global RNG (weight init) from it."""
    return seed_global(seed, *stream)


def training_targets(synset: SyntheticSet, stored: bool) -> tuple[torch.Tensor, str]:
    """What to train on and with which loss: ``(labels, label_loss)`` for ``train_classifier``.

    Class labels with cross-entropy unless ``stored``; stored labels of a hard-labelled set
    are its class labels, regression (least-squares) labels train with squared error (as
    KIP/RFAD train on KRR targets), soft labels with soft cross-entropy.
    """
    if not stored or synset.label_kind == "hard":
        return synset.hard_labels, "ce"
    return synset.labels.float(), "mse" if synset.label_kind == "regression" else "ce"


def train_once(
    ctx: RunContext, protocol: TrainProtocol, synset: SyntheticSet, lr: float, stream: tuple, labels: torch.Tensor,
    label_loss: Literal["auto", "ce", "mse"] = "auto",
) -> torch.nn.Module:
    """Train one fresh network on ``synset`` with a seed derived from ``stream``.

    A staged set (SeqMatch) is trained sequentially: see ``stage_plan``. ``label_loss`` is
    passed to ``train_classifier`` (``mse`` for regression targets).
    """
    gen = seed_torch(stream, ctx.runtime.seed)
    model = ctx.create_model(protocol.model)
    plan = stage_plan(protocol, synset, lr)
    steps = [(None, protocol.epochs, lr)] if plan is None else [(s.index, s.epochs, s.lr) for s in plan]
    for index, epochs, stage_lr in steps:
        x, y = (synset.images, labels) if index is None else (synset.images[index], labels[index])
        train_classifier(
            model, x, y, epochs=epochs, lr=stage_lr, generator=gen,
            batch_size=protocol.batch_size, momentum=protocol.momentum, weight_decay=protocol.weight_decay,
            augment=augmenter(protocol.augment), autocast=ctx.runtime.autocast, scaler=ctx.runtime.grad_scaler(), label_loss=label_loss,
            compiled=ctx.runtime.compiled,
        )
    return model


@dataclass
class Stage:
    """One stage of sequential training: the images seen (S_1 ∪ ... ∪ S_k), its epochs and lr."""

    index: torch.Tensor
    epochs: int
    lr: float


def split_epochs(total: int, stages: int) -> list[int]:
    """``total`` epochs over ``stages`` (earlier stages take the remainder), each at least 1."""
    base, extra = divmod(total, stages)
    return [max(1, base + (1 if k < extra else 0)) for k in range(stages)]


def stage_plan(protocol: Any, synset: SyntheticSet, lr: float) -> list[Stage] | None:
    """The sequential protocol of a staged set (SeqMatch), or None to train on all at once.

    Stage k trains the same network on S_1 ∪ ... ∪ S_k for its share of ``epochs`` (the
    total stays ``epochs``, so staged and plain sets get the same training budget), with
    the set's learned lr of stage k when it has them (and ``use_learned_lr``), else ``lr``.
    A set with one stage, or ``sequential: false``, trains as usual.
    """
    if synset.stages is None or not getattr(protocol, "sequential", True):
        return None
    stages = synset.stages.to(synset.images.device)
    ids = sorted(int(k) for k in stages.unique())
    if len(ids) < 2:
        return None
    lrs = [lr] * len(ids)
    learned = synset.stage_lrs
    if getattr(protocol, "use_learned_lr", False) and learned and len(learned) == len(ids) \
            and all(v is not None for v in learned):
        lrs = [float(v) for v in learned]
    epochs = split_epochs(protocol.epochs, len(ids))
    return [Stage((stages <= k).nonzero().flatten(), e, r) for k, e, r in zip(ids, epochs, lrs)]


def stage_info(protocol: Any, synset: SyntheticSet, lr: float) -> dict[str, Any]:
    """What ``metrics.json`` says about a sequential evaluation (empty for a plain one)."""
    plan = stage_plan(protocol, synset, lr)
    if plan is None:
        return {}
    return {"protocol": "sequential", "stage_lrs": [s.lr for s in plan],
            "stage_epochs": [s.epochs for s in plan], "stage_sizes": [len(s.index) for s in plan]}


def arm_stream(name: str, synset: SyntheticSet, protocol: Any, *rest: Any) -> tuple:
    """The seed stream of one training of an arm: shared by both arms when ``paired``.

    With ``paired`` (the default) network r of the synthetic arm and network r of the random
    arm start from the same weights and see the same batch order and augmentation draws,
    so the difference of the two arms is not diluted by initialisation luck. Unpaired, the
    arm's role enters the stream (the behaviour before pairing existed).
    """
    if getattr(protocol, "paired", True):
        return (name, *rest)
    return (name, synset.metadata.get("role", "synthetic"), *rest)


def learned_lr(synset: SyntheticSet) -> float | None:
    """The lr a set brings (trajectory matching's α; a staged set's last-stage α), if any."""
    if synset.lr is not None:
        return float(synset.lr)
    if synset.stage_lrs and all(v is not None for v in synset.stage_lrs):
        return float(synset.stage_lrs[-1])
    return None


def random_arm_grid(protocol: TrainProtocol, partner_lr: float) -> list[float]:
    """The candidates for the random arm of a set with learned lr α: α·factors, the fixed lr
    and any ``lr_grid``, sorted and distinct."""
    grid = {round(partner_lr * f, 10) for f in protocol.random_lr_factors} | {protocol.lr}
    grid |= set(protocol.lr_grid or [])
    return sorted(grid)


def best_lr(scores: dict[float, float], fixed: float, partner: float | None = None) -> float:
    """The lr with the best validation accuracy; a tie goes to the protocol's fixed lr, then to
    the partner's learned lr, then to the smallest tied.

    Small validation splits tie often (digits: 143 images); taking the first candidate would
    quietly hand the random arm the smallest lr of its grid.
    """
    top = max(scores.values())
    tied = [lr for lr, acc in scores.items() if acc == top]
    for preferred in (fixed, partner):
        if preferred is not None and any(math.isclose(lr, preferred, rel_tol=1e-9) for lr in tied):
            return next(lr for lr in tied if math.isclose(lr, preferred, rel_tol=1e-9))
    return min(tied)


def choose_lr(
    ctx: RunContext, protocol: TrainProtocol, synset: SyntheticSet, labels: torch.Tensor, tag: str,
    train: Callable[[float, tuple], torch.nn.Module] | None = None,
) -> tuple[float, dict]:
    """The training lr: learned, picked on the validation split, or the fixed option.

    A random arm whose synthetic partner brings a learned lr (``metadata["partner_lr"]``)
    is never trained at the fixed lr by default: its lr is picked on the validation split
    from ``random_arm_grid`` (which includes the partner's lr). ``train(lr, stream)`` trains
    one candidate network (default: ``train_once``); the test split is never looked at here.
    """
    own = learned_lr(synset) if protocol.use_learned_lr else None
    if own is not None:
        return own, {"lr_source": "learned"}  # a staged set trains each stage at its own
    grid, source = protocol.lr_grid, "validation"
    partner = synset.metadata.get("partner_lr") if synset.metadata.get("role") == "random" else None
    if partner is not None and protocol.use_learned_lr:
        grid, source = random_arm_grid(protocol, float(partner)), "validation (random-arm grid)"
        if len(ctx.data.val_y) == 0:
            return protocol.lr, {"lr_source": "fixed (no validation split to choose the random arm's lr on)",
                                 "partner_lr": float(partner)}
    if not grid:
        return protocol.lr, {"lr_source": "fixed"}
    if len(ctx.data.val_y) == 0:
        raise UserError("lr_grid needs a validation split; set data.val_fraction above 0")
    if train is None:
        def train(lr: float, stream: tuple) -> torch.nn.Module:
            return train_once(ctx, protocol, synset, lr, stream, labels)
    scores = {}
    diverged = []
    for lr in grid:
        try:
            model = train(lr, arm_stream(tag, synset, protocol, "lr-select", lr))
        except DivergenceError:  # a candidate too large for this set is a bad candidate, not a failed run
            diverged.append(lr)
            continue
        scores[lr] = accuracy(model, ctx.data.val_x, ctx.data.val_y, ctx.runtime.autocast)
    if not scores:
        raise DivergenceError(f"training diverged at every lr of {list(grid)}; add smaller ones to lr_grid")
    best = best_lr(scores, protocol.lr, partner)
    info: dict[str, Any] = {"lr_source": source, "lr_grid": list(grid), "val_accuracy_by_lr": scores}
    if partner is not None:
        info["partner_lr"] = float(partner)
    return best, {**info, "lr_diverged": diverged} if diverged else info


def arm_record(role: str, protocol: Any, out: list[tuple]) -> dict[str, Any]:
    """What ``metrics.json`` keeps of an arm's runs ``(test, val, drawn indices, ...)``:
    validation accuracy per network (for the paired validation difference) and, for a random
    arm, how it was drawn and, drawn per network, which training images each network saw."""
    rec: dict[str, Any] = {}
    vals = [o[1] for o in out]
    if vals and all(v is not None for v in vals):
        rec["val_mean"] = sum(vals) / len(vals)
        rec["val_values"] = vals
    if role == "random":
        rec["random_draws"] = protocol.random_draws
        draws = [o[2] for o in out]
        if all(d is not None for d in draws) and draws:
            rec["drawn_indices"] = draws
    return rec


def spread_runs(ctx: RunContext, runs: int, fn: Callable[[int], T], desc: str = "evaluate") -> list[T]:
    """``fn(r)`` for every run index, each process taking a contiguous share, gathered everywhere.

    The share goes through ``runtime.split``, so ``logs/process-i.json`` records which runs
    each process trained. Each run derives its seeds from its index alone, so the gathered
    list (in run order) is the same whatever the number of processes.
    """
    mine = ctx.runtime.split(range(runs), f"{desc} runs")
    values = [fn(r) for r in ctx.progress(mine, desc=desc)]
    return ctx.runtime.gather(values)


