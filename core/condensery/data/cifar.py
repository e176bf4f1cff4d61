"""CIFAR python batches, read with a restricted unpickler that admits only numpy arrays."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..api.data import DatasetSource, RawSplits
from ..api.errors import UserError
from .files import _expand, _fingerprint_files, _not_found
from .options import RootOptions


class _SafeUnpickler(pickle.Unpickler):
    """Admits only what CIFAR batches hold (dicts, lists, bytes, numpy arrays): no code runs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def read_cifar_batch(path: Path) -> dict:
    """One CIFAR python batch, read with the restricted unpickler; keys decoded to text."""
    try:
        with path.open("rb") as f:
            raw = _SafeUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise UserError(f"'{path}' is not a CIFAR python batch ({exc})") from None
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


class _CIFAR(DatasetSource):
    """CIFAR python batches (the layout torchvision downloads), never downloaded here."""

    Options = RootOptions
    folder = ""
    train_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    meta_file = ""
    label_key = ""
    names_key = ""

    def _base(self) -> Path:
        return _expand(self.options.root) / self.folder

    def _read(self, files: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for name in files:
            path = self._base() / name
            if not path.is_file():
                raise _not_found(type(self).__name__, _expand(self.options.root), self.layout)
            batch = read_cifar_batch(path)
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[self.label_key], dtype=np.int64))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    def load(self) -> RawSplits:
        xtr, ytr = self._read(self.train_files)
        xte, yte = self._read(self.test_files)
        meta_path = self._base() / self.meta_file
        if not meta_path.is_file():
            raise _not_found(type(self).__name__, _expand(self.options.root), self.layout)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in read_cifar_batch(meta_path)[self.names_key]]
        return RawSplits(xtr, ytr, xte, yte, names)

    def fingerprint(self) -> str | None:
        files = [self._base() / f for f in (*self.train_files, *self.test_files, self.meta_file)]
        return _fingerprint_files(files) if all(f.is_file() for f in files) else None

    @property
    def layout(self) -> str:
        return f"ROOT/{self.folder}/" + ", ".join((*self.train_files, *self.test_files, self.meta_file))


class CIFAR10(_CIFAR):
    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    meta_file, label_key, names_key = "batches.meta", "labels", "label_names"


class CIFAR100(_CIFAR):
    folder = "cifar-100-python"
    train_files, test_files = ("train",), ("test",)
    meta_file, label_key, names_key = "meta", "fine_labels", "fine_label_names"
