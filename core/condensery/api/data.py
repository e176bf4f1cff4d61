"""What a dataset plugin provides: raw train/test tensors and how to fingerprint them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.options import DatasetOptions


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
