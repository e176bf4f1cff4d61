"""The ``imagefolder`` source: ``ROOT/{train,test}/<class>/*`` image files, decoded once."""

from __future__ import annotations

import torch

from ..api.data import DatasetSource, RawSplits
from ..api.errors import UserError
from .files import _expand, _fingerprint_files, _not_found
from .options import ImageFolderOptions


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
