"""Datasets: sources, class-indexed RealData, augmentation."""

from ..api.data import DatasetOptions, DatasetSource, RawSplits
from .augment import DSA, DSA_OPS, AugParams, crop_flip
from .realdata import RealData, load_raw

__all__ = [
    "DSA", "DSA_OPS", "AugParams", "crop_flip", "RealData", "load_raw",
    "DatasetOptions", "DatasetSource", "RawSplits",
]
