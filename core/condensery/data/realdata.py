"""RealData: train / validation / test tensors, normalised, class-indexed, cached.

Decoding happens once per dataset version: the raw tensors are cached as ``.safetensors``
under ``$CONDENSERY_CACHE`` (default ``~/.cache/condensery``), keyed by the source's
fingerprint, so a second run skips JPEG decoding entirely.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..api.data import DatasetSource, RawSplits
from ..api.errors import UserError
from ..api.files import atomic_path
from ..api.zca import ZCA
from .validate import validate_raw

SPLIT_SEED = 0  # the validation split never changes with the run seed


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


def _to_unit_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


@dataclass
class RealData:
    """Normalised float tensors for train / val / test, with per-class indices of train."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: list[str]
    mean: list[float]
    std: list[float]
    zca: ZCA | None = None  # the whitening applied after normalisation, if any

    def __post_init__(self) -> None:
        self.class_indices = [
            (self.train_y == c).nonzero().flatten() for c in range(self.num_classes)
        ]

    @classmethod
    def from_raw(
        cls, name: str, raw: RawSplits, val_fraction: float, normalize: bool, zca: bool = False, zca_eps: float = 0.1
    ) -> RealData:
        from .sources import _stratified_mask

        x = _to_unit_float(raw.train_images)
        y = raw.train_labels
        val_mask = _stratified_mask(y, val_fraction, SPLIT_SEED) if val_fraction > 0 else torch.zeros(len(y), dtype=torch.bool)
        tx, ty = x[~val_mask], y[~val_mask]
        if normalize:
            mean = tx.mean(dim=(0, 2, 3))
            std = tx.std(dim=(0, 2, 3)).clamp_min(1e-6)
        else:
            mean = torch.zeros(x.shape[1])
            std = torch.ones(x.shape[1])

        def norm(t: torch.Tensor) -> torch.Tensor:
            return ((t - mean[None, :, None, None]) / std[None, :, None, None]).contiguous()

        train, val, test = norm(tx), norm(x[val_mask]), norm(_to_unit_float(raw.test_images))
        whitening = None
        if zca:
            whitening = ZCA.fit(train, zca_eps)
            train, val, test = (whitening.transform(t).contiguous() for t in (train, val, test))
        return cls(
            name, train, ty.clone(), val, y[val_mask].clone(), test, raw.test_labels.clone(),
            list(raw.class_names), mean.tolist(), std.tolist(), whitening,
        )

    # -- shape facts --------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> RealData:
        return RealData(
            self.name, self.train_x.to(device), self.train_y.to(device), self.val_x.to(device),
            self.val_y.to(device), self.test_x.to(device), self.test_y.to(device),
            self.class_names, self.mean, self.std, self.zca,
        )

    # -- class-balanced access ----------------------------------------------------
    def class_count(self, c: int) -> int:
        return len(self.class_indices[c])

    def class_batch_indices(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """Indices of ``n`` distinct train images of class ``c`` (fewer if the class is smaller)."""
        idx = self.class_indices[c]
        perm = torch.randperm(len(idx), generator=generator)[:n]
        return idx[perm.to(idx.device)]

    def class_batch(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.train_x[self.class_batch_indices(c, n, generator)]

    def balanced_indices(self, per_class: int, generator: torch.Generator) -> torch.Tensor:
        """``per_class`` distinct indices of every class, class-ordered (class 0 first)."""
        for c in range(self.num_classes):
            if self.class_count(c) < per_class:
                from ..api.errors import UserError

                raise UserError(
                    f"class '{self.class_names[c]}' has only {self.class_count(c)} training images, "
                    f"fewer than the {per_class} per class asked for; lower the ipc"
                )
        return torch.cat([self.class_batch_indices(c, per_class, generator) for c in range(self.num_classes)])

    def balanced_batch(self, per_class: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.balanced_indices(per_class, generator)
        return self.train_x[idx], self.train_y[idx]

    # -- image space ---------------------------------------------------------------
    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.zca is not None:
            x = self.zca.inverse(x)
        mean = torch.tensor(self.mean, device=x.device)[None, :, None, None]
        std = torch.tensor(self.std, device=x.device)[None, :, None, None]
        return x * std + mean
