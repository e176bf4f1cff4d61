"""The soft-label evaluator's teacher: loaded from a state dict, reused from the cache, or trained.

Teachers are cached as ``.safetensors`` under ``$CONDENSERY_CACHE/teachers`` (or
``teacher.cache_dir``), keyed by the data fingerprint, the teacher options and the seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch.nn as nn
from condensery import RunContext, UserError, atomic_path, read_safetensors, train_classifier

from .options import TeacherOptions
from .protocol import augmenter, cache_root, data_fingerprint, key_of, seed_torch


def _teacher_path(ctx: RunContext, t: TeacherOptions) -> Path:
    spec = dict(ctx.task.model) if t.model is None else {"name": t.model}
    opts = t.model_dump(exclude={"cache", "cache_dir", "path"})
    key = key_of(data_fingerprint(ctx), spec, opts, ctx.runtime.seed)
    root = Path(os.path.expanduser(t.cache_dir)) if t.cache_dir else cache_root() / "teachers"
    return root / f"{ctx.task.dataset}-{spec['name']}-{key}.safetensors"


def _load_state(model: nn.Module, path: Path) -> nn.Module:
    state, _ = read_safetensors(path, "teacher ", device=str(next(model.parameters()).device))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"teacher '{path}' does not fit the teacher model ({first}); set teacher.model to its architecture") from None
    return model


def build_teacher(ctx: RunContext, t: TeacherOptions) -> nn.Module:
    """Load, reuse from the cache, or train the teacher; returned in eval mode, frozen."""
    seed_torch(("teacher", "init"), ctx.runtime.seed)
    model = ctx.create_model(t.model, **t.model_options)
    if t.path is not None:
        path = Path(os.path.expanduser(t.path))
        if not path.is_file():
            raise UserError(f"teacher.path '{path}' does not exist; give a .safetensors state dict or leave it unset to train one")
        _load_state(model, path)
    else:
        path = _teacher_path(ctx, t)
        rt = ctx.runtime
        if not (t.cache and path.is_file()) and (rt.is_main or not t.cache):
            gen = seed_torch(("teacher", "train"), rt.seed)
            train_classifier(
                model, ctx.data.train_x, ctx.data.train_y, epochs=t.epochs, lr=t.lr, generator=gen,
                batch_size=t.batch_size, momentum=t.momentum, weight_decay=t.weight_decay,
                augment=augmenter(t.augment), autocast=rt.autocast, scaler=rt.grad_scaler(), lr_schedule=t.schedule,
            )
            if t.cache:
                from safetensors.torch import save_file

                with atomic_path(path) as tmp:
                    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
        if t.cache:
            if rt.num_processes > 1:
                rt.accelerator.wait_for_everyone()
            _load_state(model, path)  # every process uses the very same bytes
    model.eval()
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model
