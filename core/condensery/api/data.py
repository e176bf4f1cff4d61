"""The data of a task: what a dataset plugin returns (``RawSplits``) and what ``ctx.data`` is.

A ``DatasetSource`` decodes its files into ``RawSplits`` once (the core caches them);
``RealData.from_raw`` normalises them, carves the validation split and indexes the training
split by class, so a method draws a batch of class ``c`` in O(1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import UserError
from .options import DatasetOptions
from .zca import ZCA

SPLIT_SEED = 0  # the validation split never changes with the run seed


@dataclass
class RawSplits:
    """Decoded data before normalisation: images uint8 [N,C,H,W] (or float in [0,1])."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]


class DatasetSource:
    """Base for dataset plugins: ``load()`` decodes the data once; the core caches it."""

    Options: type[DatasetOptions] = DatasetOptions

    def __init__(self, options: DatasetOptions) -> None:
        self.options = options

    def load(self) -> RawSplits:
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def fingerprint(self) -> str | None:
        """A string that changes when the source files change; None disables caching."""
        return None


def stratified_mask(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Boolean mask selecting ``fraction`` of each class, reproducibly."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        k = int(round(len(idx) * fraction))
        mask[idx[torch.randperm(len(idx), generator=g)[:k]]] = True
    return mask


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
        x = _to_unit_float(raw.train_images)
        y = raw.train_labels
        val_mask = stratified_mask(y, val_fraction, SPLIT_SEED) if val_fraction > 0 else torch.zeros(len(y), dtype=torch.bool)
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

    def balanced_indices(self, per_class: int, generator: torch.Generator) -> torch.Tensor:
        """``per_class`` distinct indices of every class, class-ordered (class 0 first)."""
        for c in range(self.num_classes):
            if self.class_count(c) < per_class:
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
