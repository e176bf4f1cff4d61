"""Built-in dataset sources. None of them downloads anything.

MNIST-style files and image folders are read with torchvision's dataset classes
(``download=False``); CIFAR python batches with a restricted unpickler that admits only
numpy arrays. A missing file becomes a one-line error that shows the expected layout.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from ..errors import UserError
from .source import DatasetOptions, DatasetSource, RawSplits


def _fingerprint_files(paths: list[Path]) -> str:
    h = hashlib.sha1()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _expand(root: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(root)))


class DigitsOptions(DatasetOptions):
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)


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
        test_mask = _stratified_mask(labels, self.options.test_fraction, seed=0)
        return RawSplits(
            images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask],
            [str(i) for i in range(10)],
        )


def _stratified_mask(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Boolean mask selecting ``fraction`` of each class, reproducibly."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        k = int(round(len(idx) * fraction))
        mask[idx[torch.randperm(len(idx), generator=g)[:k]]] = True
    return mask


class RootOptions(DatasetOptions):
    root: str = Field(..., description="folder holding the dataset files")


def _not_found(name: str, root: Path, layout: str) -> UserError:
    return UserError(f"{name} files not found under '{root}'; expected {layout} (condensery never downloads)")


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


class ImageFolderOptions(RootOptions):
    image_size: int | None = Field(None, ge=1, description="resize to this square size (needed when sizes differ)")
    workers: int = Field(2, ge=0, description="decoding processes")


class ImageFolder(DatasetSource):
    """``ROOT/train/<class>/*.jpg`` and ``ROOT/test/<class>/*.jpg``, decoded once with workers."""

    Options = ImageFolderOptions

    def _split(self, split: str, classes: list[str] | None):
        import torchvision.datasets as tvd
        import torchvision.transforms as T

        folder = _expand(self.options.root) / split
        if not folder.is_dir():
            raise _not_found("ImageFolder", _expand(self.options.root), "ROOT/train/<class>/*.png|jpg and ROOT/test/<class>/*")
        tfs = [T.PILToTensor()]
        if self.options.image_size:
            tfs.insert(0, T.Resize((self.options.image_size, self.options.image_size)))
        try:
            ds = tvd.ImageFolder(str(folder), transform=T.Compose(tfs))
        except FileNotFoundError as exc:  # e.g. an empty class folder
            raise UserError(f"'{folder}': {str(exc).splitlines()[0].rstrip('.')}; give every class folder images "
                            "(.png, .jpg, ...) or remove it") from None
        if classes is not None and ds.classes != classes:
            raise UserError(f"'{folder}' has classes {ds.classes}, but train has {classes}; use the same class folders")
        return ds, decode_all(ds, self.options.workers)

    def load(self) -> RawSplits:
        tr, (xtr, ytr) = self._split("train", None)
        _, (xte, yte) = self._split("test", tr.classes)
        return RawSplits(xtr, ytr, xte, yte, list(tr.classes))

    def fingerprint(self) -> str | None:
        root = _expand(self.options.root)
        files = [p for s in ("train", "test") for p in (root / s).rglob("*") if p.is_file()]
        return _fingerprint_files(files) + f":{self.options.image_size}" if files else None


def decode_all(ds, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a map-style dataset of (uint8 tensor, label) into two stacked tensors."""
    from torch.utils.data import DataLoader

    loader = DataLoader(ds, batch_size=512, num_workers=workers, shuffle=False)
    xs, ys = [], []
    try:
        for x, y in loader:
            xs.append(x)
            ys.append(y)
    except RuntimeError as exc:
        if "stack expects each tensor to be equal size" in str(exc) or "must match" in str(exc):
            raise UserError("images have different sizes or channels; set data.image_size to resize them") from None
        _name_undecodable(ds)
        raise
    except Exception:
        _name_undecodable(ds)
        raise
    images = torch.cat(xs)
    if images.shape[1] == 4:
        images = images[:, :3]
    return images.contiguous(), torch.cat(ys).to(torch.int64)


def _name_undecodable(ds) -> None:
    """After a decoding failure: a one-line error naming the first file PIL cannot decode."""
    from PIL import Image

    for path, _ in getattr(ds, "samples", []):
        try:
            with Image.open(path) as im:
                im.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - any decoder failure is this file's fault
            raise UserError(f"'{path}' is not a decodable image ({type(exc).__name__}); replace or remove it") from None


class TensorsOptions(DatasetOptions):
    train: str = Field(..., description=".safetensors with 'images' [N,C,H,W] and 'labels' [N]")
    test: str = Field(..., description=".safetensors with 'images' [N,C,H,W] and 'labels' [N]")
    class_names: list[str] | None = None


class Tensors(DatasetSource):
    """Tensors in ``.safetensors`` files: ``images`` uint8 or float [N,C,H,W], ``labels`` int64 [N]."""

    Options = TensorsOptions

    def _read(self, path_text: str) -> tuple[torch.Tensor, torch.Tensor]:
        from ..tensorfile import read_safetensors

        path = _expand(path_text)
        if not path.is_file():
            raise UserError(f"tensors file '{path}' does not exist; write one with safetensors.torch.save_file({{'images': ..., 'labels': ...}}, path)")
        data, _ = read_safetensors(path)
        missing = {"images", "labels"} - set(data)
        if missing:
            raise UserError(f"'{path}' lacks tensor(s) {sorted(missing)}; it needs 'images' [N,C,H,W] and 'labels' [N]")
        x, y = data["images"], data["labels"]
        if x.dim() != 4 or y.dim() != 1 or len(x) != len(y):
            raise UserError(f"'{path}': images must be [N,C,H,W] and labels [N] with the same N; got {tuple(x.shape)} and {tuple(y.shape)}")
        if x.is_floating_point():
            x = x.float()
        from .validate import check_pixels

        check_pixels(x, f"'{path}'")
        if y.is_floating_point() and bool((y != y.round()).any()):
            i = int((y != y.round()).nonzero()[0, 0])
            raise UserError(f"'{path}': labels must be integer class indices; label {y[i].item()} at index {i}")
        return x, y.to(torch.int64)

    def load(self) -> RawSplits:
        xtr, ytr = self._read(self.options.train)
        xte, yte = self._read(self.options.test)
        if xtr.shape[1:] != xte.shape[1:]:
            raise UserError(f"train images are {tuple(xtr.shape[1:])} but test images are {tuple(xte.shape[1:])}")
        for path, y in ((self.options.train, ytr), (self.options.test, yte)):
            if len(y) and int(y.min()) < 0:
                i = int((y < 0).nonzero()[0, 0])
                raise UserError(f"'{_expand(path)}': label {int(y[i])} at index {i} is negative; labels are class indices 0..K-1")
        k = int(max(ytr.max(), yte.max())) + 1
        names = self.options.class_names or [str(i) for i in range(k)]
        if len(names) < k:
            big = max((self.options.train, ytr), (self.options.test, yte), key=lambda t: int(t[1].max()))
            i = int(big[1].argmax())
            raise UserError(f"'{_expand(big[0])}': label {int(big[1][i])} at index {i} is outside the "
                            f"{len(names)} class_names; add names or fix the labels")
        return RawSplits(xtr, ytr, xte, yte, names)
