"""The ``digits`` source: scikit-learn's bundled 8x8 digits, split by class (``stratified_mask``)."""

from __future__ import annotations

import numpy as np
import torch

from ..api.data import DatasetSource, RawSplits, stratified_mask
from .options import DigitsOptions


class Digits(DatasetSource):
    """scikit-learn's bundled 8x8 digits (1,797 images): works with no files at all.

    The train/test split is fixed (stratified, seed 0) so results are comparable across runs.
    """

    Options = DigitsOptions

    def load(self) -> RawSplits:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
        labels = torch.from_numpy(bunch.target.astype(np.int64))
        test_mask = stratified_mask(labels, self.options.test_fraction, seed=0)
        return RawSplits(
            images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask],
            [str(i) for i in range(10)],
        )
