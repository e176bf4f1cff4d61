"""MNIST-style sources read with torchvision's dataset classes (``download=False``)."""

from __future__ import annotations

import numpy as np
import torch

from ..api.data import DatasetSource, RawSplits
from .files import _expand, _fingerprint_files, _not_found
from .options import RootOptions


class _TorchvisionArrays(DatasetSource):
    """MNIST-style and CIFAR-style torchvision datasets that hold all images in arrays."""

    Options = RootOptions
    tv_class: str = ""
    folder: str = ""
    layout: str = ""

    def _dataset(self, train: bool):
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.tv_class)
        root = _expand(self.options.root)
        try:
            return cls(str(root), train=train, download=False)
        except RuntimeError:
            raise _not_found(self.tv_class, root, self.layout) from None

    def load(self) -> RawSplits:
        tr, te = self._dataset(True), self._dataset(False)
        return RawSplits(
            _to_nchw(tr.data), torch.as_tensor(tr.targets, dtype=torch.int64),
            _to_nchw(te.data), torch.as_tensor(te.targets, dtype=torch.int64),
            [str(c) for c in tr.classes],
        )

    def fingerprint(self) -> str | None:
        base = _expand(self.options.root) / self.folder
        files = [p for p in base.rglob("*") if p.is_file()] if base.is_dir() else []
        return _fingerprint_files(files) if files else None


def _to_nchw(data) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(data))
    if t.dim() == 3:  # [N,H,W] grey
        return t.unsqueeze(1).contiguous()
    return t.permute(0, 3, 1, 2).contiguous()  # [N,H,W,C]


class MNIST(_TorchvisionArrays):
    """torchvision's MNIST layout: ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``."""

    tv_class, folder = "MNIST", "MNIST"
    layout = "ROOT/MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"


class FashionMNIST(_TorchvisionArrays):
    tv_class, folder = "FashionMNIST", "FashionMNIST"
    layout = "ROOT/FashionMNIST/raw/train-images-idx3-ubyte, ... (the MNIST idx layout)"
