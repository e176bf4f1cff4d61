"""The soft-label evaluator's teacher: loaded from a teacher file, reused from the cache, or trained.

Teachers are cached under ``$CONDENSERY_CACHE/teachers`` (or ``teacher.cache_dir``), keyed by
the data fingerprint, the teacher options and the seed, in the one teacher format
(``condensery.teachers.save_teacher``: state dict + model spec header), so a cached teacher also
serves as a ``bnstats`` matcher's or DWA's ``teacher``. Cache files written before the
header existed (bare state dicts) still load: their model is the options' own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch.nn as nn
from condensery import RunContext, UserError, train_classifier
from condensery.outputs import move_aside
from condensery.teachers import load_teacher, load_teacher_into, read_teacher, save_teacher

from .caches import cache_root, data_fingerprint, key_of
from .options import TeacherOptions
from .protocol import augmenter, seed_torch


def _teacher_path(ctx: RunContext, t: TeacherOptions) -> Path:
    spec = dict(ctx.task.model) if t.model is None else {"name": t.model}
    opts = t.model_dump(exclude={"cache", "cache_dir", "path"})
    key = key_of(data_fingerprint(ctx), spec, opts, ctx.runtime.seed)
    root = Path(os.path.expanduser(t.cache_dir)) if t.cache_dir else cache_root() / "teachers"
    return root / f"{ctx.task.dataset}-{spec['name']}-{key}.safetensors"


def _check_cached(path: Path, spec: dict) -> None:
    """A cached teacher that is damaged, or not a teacher of ``spec``, is moved aside (named on
    stderr) so that it is trained again; it is never replaced silently, nor loaded."""
    try:
        _, header = read_teacher(path)
    except UserError:
        move_aside(path, "not a readable teacher file")
        return
    if header.get("model") not in (None, json.loads(json.dumps(spec, default=str))):
        move_aside(path, f"a teacher of model {header.get('model')}, not {spec}")


def build_teacher(ctx: RunContext, t: TeacherOptions) -> nn.Module:
    """Load, reuse from the cache, or train the teacher; returned in eval mode, frozen.

    A ``teacher.path`` file is built as the recipe's teacher model when it names one
    (``model``/``model_options``), else as the model its header records, else (a bare
    state dict) as the task model.
    """
    seed_torch(("teacher", "init"), ctx.runtime.seed)
    spec = ctx.model_spec(t.model, **t.model_options)
    if t.path is not None:
        path = Path(os.path.expanduser(t.path))
        if not path.is_file():
            raise UserError(f"teacher.path '{path}' does not exist; give a teacher .safetensors or leave it unset to train one")
        named = t.model is not None or bool(t.model_options)
        return load_teacher(path, ctx, spec if named else None, default=spec)[0]
    model = ctx.create_model(t.model, **t.model_options)
    path = _teacher_path(ctx, t)
    rt = ctx.runtime
    if t.cache and rt.is_main and path.is_file():
        _check_cached(path, spec)
    if not (t.cache and path.is_file()) and (rt.is_main or not t.cache):
        gen = seed_torch(("teacher", "train"), rt.seed)
        train_classifier(
            model, ctx.data.train_x, ctx.data.train_y, epochs=t.epochs, lr=t.lr, generator=gen,
            batch_size=t.batch_size, momentum=t.momentum, weight_decay=t.weight_decay,
            augment=augmenter(t.augment), autocast=rt.autocast, scaler=rt.grad_scaler(), lr_schedule=t.schedule,
            compiled=rt.compiled,
        )
        if t.cache:
            save_teacher(path, model, spec, trained_by="soft-label evaluator", dataset=ctx.task.dataset,
                         seed=rt.seed, options=t.model_dump(mode="json", exclude={"cache", "cache_dir", "path"}))
    if t.cache:
        if rt.num_processes > 1:
            rt.accelerator.wait_for_everyone()
        load_teacher_into(model, path, spec)  # every process uses the very same bytes
    model.eval()
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model
