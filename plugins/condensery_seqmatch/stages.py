"""The subset structure of SeqMatch and the warm starts that make later subsets target later training.

A set of ``ipc`` images per class is split into K subsets with ``sizes[k]`` images per class.
Rows are stored stage-major (S_1 class-ordered, then S_2, ...), so the frozen subsets of
stage k are the prefix ``[:lo]`` and the learnable one is ``[lo:hi]``.

Stage k (k > 1) starts its networks from one trained on the frozen subsets the way the
sequential evaluation trains: on S_1 with α_1, then S_1 ∪ S_2 with α_2, ... (``warm_train``).
For trajectory matching every stage-k expert is such a warm network then trained on real
data (the expert settings of the wrapped matcher), snapshotted every epoch; the shards are
written with ``condensery_matching.experts`` into ``checkpoints/seqmatch-experts/`` under a
folder keyed by a hash of the frozen subsets and lrs, so a resumed run reuses finished
shards and a different history can never be mistaken for this one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn
from condensery import RunContext, UserError, make_generator, seed_global_from, train_classifier
from condensery.data import DSA
from condensery_matching.experts import (
    ExpertSpec,
    available_experts,
    expert_path,
    flat_parameters,
    read_header,
    write_expert,
)


def stage_layout(sizes: list[int], num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(order, stages)``: rows of a class-ordered set (``ipc`` per class) in stage-major order.

    ``x[order]`` is S_1 (class 0's first ``sizes[0]`` images, class 1's, ...), then S_2, ...;
    ``stages[i]`` is the subset index (0-based) of row ``i`` of ``x[order]``.
    """
    ipc = sum(sizes)
    starts = [0]
    for n in sizes[:-1]:
        starts.append(starts[-1] + n)
    base = torch.arange(num_classes).unsqueeze(1) * ipc
    order = torch.cat([(base + torch.arange(s, s + n).unsqueeze(0)).flatten() for s, n in zip(starts, sizes)])
    stages = torch.cat([torch.full((num_classes * n,), k, dtype=torch.long) for k, n in enumerate(sizes)])
    return order, stages


def stage_bounds(sizes: list[int], num_classes: int) -> list[int]:
    """Row offsets of the stages in the stage-major layout: S_k is ``[bounds[k], bounds[k+1])``."""
    bounds = [0]
    for n in sizes:
        bounds.append(bounds[-1] + n * num_classes)
    return bounds


def warm_train(
    ctx: RunContext, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, stages: torch.Tensor,
    lrs: list[float], epochs: int, gen: torch.Generator, momentum: float, weight_decay: float, dsa: bool,
    batch_size: int = 256,
) -> nn.Module:
    """Train ``model`` sequentially on the frozen subsets: S_1 with ``lrs[0]``, then S_1 ∪ S_2, ..."""
    stages = stages.to(images.device)
    for j, lr in enumerate(lrs):
        idx = (stages <= j).nonzero().flatten()
        train_classifier(
            model, images[idx], labels[idx], epochs=epochs, lr=lr, generator=gen, batch_size=batch_size,
            momentum=momentum, weight_decay=weight_decay, augment=DSA() if dsa else None,
            autocast=ctx.runtime.autocast, scaler=ctx.runtime.grad_scaler(), compiled=ctx.runtime.compiled,
        )
    return model


def history_key(images: torch.Tensor, labels: torch.Tensor, stages: torch.Tensor, lrs: list[float],
                extra: dict) -> str:
    """A short hash of the frozen subsets, their lrs and the warm-start settings."""
    h = hashlib.sha1(json.dumps([lrs, extra], sort_keys=True, default=str).encode())
    for t in (images.detach().float(), labels, stages):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def stage_experts(
    ctx: RunContext, spec: ExpertSpec, directory: Path, count: int, stage: int, warm, model_name: str | None,
) -> list[Path]:
    """Expert trajectories of ``stage``: warm network (``warm(model, gen)``), then real data.

    Expert ``i`` is trained by process ``i % num_processes`` with a seed that depends only on
    the run seed, the stage and ``i``; finished shards are skipped, so this resumes.
    """
    rt = ctx.runtime
    todo = [i for i in range(count)
            if read_header(expert_path(directory, i)) is None and i % rt.num_processes == rt.process_index]
    for i in ctx.progress(todo, desc=f"stage {stage + 1} experts", total=len(todo)):
        gen = make_generator(rt.seed, "seqmatch-expert", stage, i)
        seed_global_from(gen)
        model = ctx.create_model(model_name)
        warm(model, gen)
        snapshots = [flat_parameters(model)]
        train_classifier(
            model, ctx.data.train_x, ctx.data.train_y, epochs=spec.epochs, lr=spec.lr, generator=gen,
            batch_size=spec.batch_size, momentum=0.0, weight_decay=0.0,
            augment=DSA() if spec.dsa else None, autocast=rt.autocast, scaler=rt.grad_scaler(), lr_schedule="none",
            on_epoch=lambda _epoch, m, s=snapshots: s.append(flat_parameters(m)), compiled=rt.compiled,
        )
        write_expert(expert_path(directory, i), torch.stack(snapshots), spec.header(i, rt.seed))
        ctx.log("seqmatch-experts", i, subset=float(stage + 1))
    if rt.num_processes > 1:
        rt.accelerator.wait_for_everyone()
    have = available_experts(directory, spec, count)
    if len(have) < count:
        raise UserError(f"seqmatch: only {len(have)} of {count} stage-{stage + 1} experts in '{directory}'")
    return have


def staged_spec(spec: ExpertSpec, key: str, stage: int) -> ExpertSpec:
    """The matcher's expert spec, marked as warm-started from this stage's frozen history."""
    return replace(spec, data={**spec.data, "seqmatch": {"stage": stage + 1, "history": key}})
