"""The ``tensors`` source: images and labels in ``.safetensors`` files."""

from __future__ import annotations

import torch

from ..api.data import DatasetSource, RawSplits
from ..api.errors import UserError
from .files import _expand
from .options import TensorsOptions


class Tensors(DatasetSource):
    """Tensors in ``.safetensors`` files: ``images`` uint8 or float [N,C,H,W], ``labels`` int64 [N]."""

    Options = TensorsOptions

    def _read(self, path_text: str) -> tuple[torch.Tensor, torch.Tensor]:
        from ..api.files import read_safetensors

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
        if len(x) == 0 or 0 in x.shape[1:]:
            raise UserError(f"'{path}': images are {tuple(x.shape)}; every split needs images of at least 1x1 pixels "
                            "and one channel")
        if x.dtype != torch.uint8 and not x.is_floating_point():
            raise UserError(f"'{path}': images are {str(x.dtype).removeprefix('torch.')}; store them as uint8 (0..255) "
                            "or float (0..1)")
        if x.is_floating_point():
            x = x.float()
        from .validate import check_pixels

        check_pixels(x, f"'{path}'")
        if y.dtype == torch.bool or y.is_complex():
            raise UserError(f"'{path}': labels are {str(y.dtype).removeprefix('torch.')}; store integer class indices")
        if y.is_floating_point():
            bad = ~torch.isfinite(y) | (y != y.round())
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                raise UserError(f"'{path}': labels must be integer class indices; label {y[i].item()} at index {i}")
            if bool((y.abs() > 2**31).any()):
                raise UserError(f"'{path}': a label exceeds 2^31; labels are class indices 0..K-1")
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
        if k > len(ytr) and not self.options.class_names:  # some class would have no training image
            big = max((self.options.train, ytr), (self.options.test, yte), key=lambda t: int(t[1].max()))
            i = int(big[1].argmax())
            raise UserError(f"'{_expand(big[0])}': label {int(big[1][i])} at index {i} implies {k} classes, more than "
                            f"the {len(ytr)} training images; labels are class indices 0..K-1")
        names = self.options.class_names or [str(i) for i in range(k)]
        if len(names) < k:
            big = max((self.options.train, ytr), (self.options.test, yte), key=lambda t: int(t[1].max()))
            i = int(big[1].argmax())
            raise UserError(f"'{_expand(big[0])}': label {int(big[1][i])} at index {i} is outside the "
                            f"{len(names)} class_names; add names or fix the labels")
        return RawSplits(xtr, ytr, xte, yte, names)
