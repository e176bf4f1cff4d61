"""Where the eval plugin caches what it can reuse across runs (teachers, full-data accuracies,
the ranking evaluator's random arm), and the keys: a fingerprint of the task's real data plus
the protocol, so a different split, normalisation or source never hits another's entry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from condensery import RunContext


def cache_root() -> Path:
    """``$CONDENSERY_CACHE`` or ``~/.cache/condensery`` (the core's data cache root)."""
    from condensery.data import cache_dir

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
