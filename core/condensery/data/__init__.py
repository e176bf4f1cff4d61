"""Datasets: sources, class-indexed RealData, augmentation."""

from .augment import DSA, DSA_OPS, AugParams, crop_flip
from .realdata import RealData, load_raw
from .source import DatasetOptions, DatasetSource, RawSplits

__all__ = [
    "DSA", "DSA_OPS", "AugParams", "crop_flip", "RealData", "load_raw",
    "DatasetOptions", "DatasetSource", "RawSplits",
]
