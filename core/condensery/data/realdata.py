"""Loading a dataset source into ``RawSplits``: decoded once, cached, restricted.

Decoding happens once per dataset version: the raw tensors are cached as ``.safetensors``
under ``$CONDENSERY_CACHE`` (default ``~/.cache/condensery``), keyed by the source's
fingerprint, so a second run skips JPEG decoding entirely. ``RealData.from_raw`` (the
contract's) then normalises and splits what this module returns.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..api.data import DatasetSource, RawSplits
from ..api.errors import UserError
from ..api.files import atomic_path
from .validate import validate_raw


def cache_dir() -> Path:
    """``$CONDENSERY_CACHE`` or ``~/.cache/condensery``: decoded data, teachers, cached accuracies."""
    path = Path(os.environ.get("CONDENSERY_CACHE", Path.home() / ".cache" / "condensery"))
    if path.exists() and not path.is_dir():
        raise UserError(f"CONDENSERY_CACHE '{path}' is a file; point it at a directory (or unset it)")
    return path


def load_raw(name: str, source: DatasetSource) -> RawSplits:
    """Decode ``source`` or read its cached tensors."""
    fp = source.fingerprint() if source.options.cache else None
    if fp is None:
        return validate_raw(source.load(), name)
    key = hashlib.sha1(f"{name}:{fp}".encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{key}.safetensors"
    if path.is_file():
        try:
            t = load_file(str(path))
            meta = json.loads(_read_meta(path)["class_names"])
            cached = RawSplits(t["train_images"], t["train_labels"], t["test_images"], t["test_labels"], meta)
        except Exception:  # a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
        else:
            return validate_raw(cached, name)
    raw = validate_raw(source.load(), name)  # never cache data that cannot be used
    with atomic_path(path) as tmp:
        save_file(
            {"train_images": raw.train_images.contiguous(), "train_labels": raw.train_labels.contiguous(),
             "test_images": raw.test_images.contiguous(), "test_labels": raw.test_labels.contiguous()},
            str(tmp), metadata={"class_names": json.dumps(raw.class_names)},
        )
    return raw


def restrict(raw: RawSplits, classes: list[int | str] | None, train_per_class: int | None) -> RawSplits:
    """A class subset (relabelled 0..k-1 in the order given) and/or a capped train split.

    Why: meta-learning and transfer studies need disjoint class subsets of one dataset
    (e.g. CIFAR-10 classes 0-4 vs 5-9), and CPU budgets need a smaller real split. Both
    happen before normalisation, so the statistics are those of the data actually used.
    """
    if classes is None and train_per_class is None:
        return raw
    names = list(raw.class_names)
    keep: list[int] = []
    for c in classes if classes is not None else range(len(names)):
        if isinstance(c, str):
            if c not in names:
                raise UserError(f"data.classes names unknown class '{c}'; known: {', '.join(names)}")
            c = names.index(c)
        if not 0 <= c < len(names):
            raise UserError(f"data.classes has index {c}, but the dataset has {len(names)} classes (0..{len(names) - 1})")
        if c in keep:
            raise UserError(f"data.classes lists class {c} twice; list each class once")
        keep.append(c)
    mapping = torch.full((len(names),), -1, dtype=torch.long)
    mapping[torch.tensor(keep)] = torch.arange(len(keep))

    def select(x: torch.Tensor, y: torch.Tensor, cap: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        new_y = mapping[y.long()]
        mask = new_y >= 0
        if cap is not None:
            rank = torch.zeros_like(new_y)
            for c in range(len(keep)):
                idx = (new_y == c).nonzero().flatten()
                rank[idx] = torch.arange(len(idx))
            mask &= rank < cap
        return x[mask], new_y[mask]

    tx, ty = select(raw.train_images, raw.train_labels, train_per_class)
    sx, sy = select(raw.test_images, raw.test_labels, None)
    return RawSplits(tx, ty, sx, sy, [names[c] for c in keep])


def _read_meta(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}
