"""The shared training protocol of evaluators: augmentation choice, seeds, lr selection,
runs spread over processes, the random subset of the same size, and cache locations."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from condensery import (
    DSA,
    DivergenceError,
    RunContext,
    SyntheticSet,
    UserError,
    accuracy,
    crop_flip,
    label_like,
    seed_global,
    train_classifier,
)

from .options import Augmentation, TrainProtocol  # noqa: F401  (Augmentation: its old home)

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


def draw_record(subject: SyntheticSet) -> list[int] | None:
    """The training-split indices a per-run random draw took (None for any other subject)."""
    return subject.metadata.get("drawn_indices")


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


def class_counts(synset: SyntheticSet, num_classes: int) -> list[int]:
    return torch.bincount(synset.hard_labels.long().cpu(), minlength=num_classes).tolist()


def random_like(ctx: RunContext, synset: SyntheticSet) -> SyntheticSet:
    """The random real subset with the same images per class as ``synset``.

    A class-balanced set gets exactly the subset the runner uses (``ctx.random_subset``).
    A set with solved (least-squares) labels gets a subset with its own solved labels
    (``label_like``), as the runner's random arm does.
    """
    counts = class_counts(synset, ctx.task.num_classes)
    if len(set(counts)) == 1:
        rnd = ctx.random_subset(counts[0])
    else:
        for c, n in enumerate(counts):
            if ctx.data.class_count(c) < n:
                raise UserError(f"the set has {n} images of class '{ctx.task.class_names[c]}', more than "
                                f"the {ctx.data.class_count(c)} real training images; no random subset of that size exists")
        rnd = draw(ctx, counts, ctx.generator("random-subset", tuple(counts)),
                   {"method": "random", "num_classes": ctx.task.num_classes})
    rnd.metadata["role"] = "random"
    return label_like(ctx, synset, rnd)


def draw(ctx: RunContext, counts: list[int], gen: torch.Generator, metadata: dict) -> SyntheticSet:
    """Real training images, ``counts[c]`` of class ``c``, drawn with ``gen``."""
    idx = torch.cat([ctx.data.class_batch_indices(c, n, gen) for c, n in enumerate(counts) if n])
    # which training images were drawn, so a result can say exactly what its random arm was
    return SyntheticSet(ctx.data.train_x[idx], ctx.data.train_y[idx],
                        metadata={**metadata, "drawn_indices": idx.tolist()})


def subject_for_run(ctx: RunContext, protocol: TrainProtocol, synset: SyntheticSet, run: int) -> SyntheticSet:
    """What run ``run`` trains on: the set itself, or, for the random baseline under
    ``random_draws: per-run``, its own class-balanced draw with the same images per class.

    One draw trained with several seeds hides the luck of the draw; measured at digits IPC 1,
    one draw scored 52 % while fresh draws scored 66 ± 7 % (docs/results.md). A random arm
    with solved labels (``label_solver``) solves each fresh draw's labels anew.
    """
    if protocol.random_draws == "one" or synset.metadata.get("role") != "random":
        return synset
    counts = class_counts(synset, ctx.task.num_classes)
    fresh = draw(ctx, counts, ctx.generator("random-draw", tuple(counts), run), dict(synset.metadata))
    return label_like(ctx, synset, fresh, "run", run)  # its own solved labels, if the arm has them


def cache_root() -> Path:
    """``$CONDENSERY_CACHE`` or ``~/.cache/condensery`` (the core's data cache root)."""
    from condensery import cache_dir

    return cache_dir()


def data_fingerprint(ctx: RunContext) -> str:
    """A short hash of the real data the task trains and tests on (labels in full, pixels strided).

    Keys caches of teachers and full-data accuracies: a different split, normalisation or
    source changes it.
    """
    cached = getattr(ctx, "_condensery_eval_fp", None)
    if cached:
        return cached
    d = ctx.data
    h = hashlib.sha1(json.dumps([d.name, d.class_names, d.mean, d.std, list(d.train_x.shape),
                                 list(d.val_x.shape), list(d.test_x.shape)]).encode())
    for t in (d.train_y, d.val_y, d.test_y):
        h.update(t.cpu().numpy().tobytes())
    for t in (d.train_x, d.test_x):
        flat = t.reshape(-1)
        h.update(flat[:: max(1, flat.numel() // 100_000)].float().cpu().numpy().tobytes())
    fp = h.hexdigest()[:16]
    ctx._condensery_eval_fp = fp
    return fp


def key_of(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
