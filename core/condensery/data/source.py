"""What a dataset plugin provides: raw train/test tensors and how to fingerprint them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field

from ..options import Options


class DatasetOptions(Options):
    """Options every dataset accepts, on top of its own."""

    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share of train carved out for validation")
    cache: bool = Field(True, description="cache decoded tensors on disk (file-based datasets)")
    normalize: bool = Field(True, description="standardise each channel with the train mean/std")
    zca: bool = Field(False, description="ZCA-whiten after normalisation (fitted on the train split)")
    zca_eps: float = Field(0.1, gt=0, description="eigenvalue regulariser of the ZCA whitening")
    classes: list[int | str] | None = Field(
        None, description="keep only these classes (indices or names), relabelled 0..k-1 in this order"
    )
    train_per_class: int | None = Field(
        None, ge=1, description="keep at most this many training images per class (first ones, fixed)"
    )


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
