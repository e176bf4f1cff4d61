"""Turning the arrow columns of a ``huggingface`` split into tensors: images, labels, class names."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..api.errors import UserError


def _pick(columns: list[str], given: str | None, defaults: tuple[str, ...], what: str, key: str, where: Path) -> str:
    if given is not None:
        if given not in columns:
            raise UserError(f"'{where}' has no column '{given}' (data.{key}); its columns are {', '.join(columns)}")
        return given
    for name in defaults:
        if name in columns:
            return name
    raise UserError(f"'{where}' has no {what} column ({' or '.join(repr(d) for d in defaults)}); its columns are "
                    f"{', '.join(columns)}; name it with data.{key}")


def _class_label_names(features: dict | None, column: str) -> list[str] | None:
    feat = (features or {}).get(column)
    if isinstance(feat, dict) and feat.get("_type") == "ClassLabel" and feat.get("names"):
        return [str(n) for n in feat["names"]]
    return None


def _encoded(value: Any, where: str, base: Path) -> bytes:
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return value["bytes"]
        p = value.get("path")
        if p:
            f = Path(p) if Path(p).is_absolute() else base / p
            if f.is_file():
                return f.read_bytes()
            raise UserError(f"{where}: the image file '{p}' it refers to does not exist locally; "
                            "save the dataset with embedded images (save_to_disk / to_parquet)")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise UserError(f"{where}: no image (empty value); fix or drop the row")


def decode_images(column: Any, where: str, base: Path, image_size: int | None) -> torch.Tensor:
    """An arrow column of images -> uint8 ``[N,C,H,W]`` (grey stays 1 channel, alpha is dropped)."""
    import pyarrow as pa

    typ = column.type
    values = column.to_pylist()
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return _arrays(values, where, image_size)
    binary = pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
    if not (binary or (pa.types.is_struct(typ) and typ.get_field_index("bytes") >= 0)):
        raise UserError(f"{where}: the image column has type {typ}; expected images (the datasets Image feature), "
                        "encoded bytes or pixel arrays")
    from PIL import Image, UnidentifiedImageError

    pics = []
    for i, v in enumerate(values):
        try:
            im = Image.open(io.BytesIO(_encoded(v, f"{where}, row {i}", base)))
            im.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"{where}, row {i}: not a decodable image ({type(exc).__name__}); fix or drop the row") from None
        pics.append(im)
    grey = all(im.mode in ("1", "L", "LA", "I", "I;16", "F") for im in pics)
    arrays = []
    for im in pics:
        im = im.convert("L" if grey else "RGB")
        if image_size:
            im = im.resize((image_size, image_size), Image.BILINEAR)
        arrays.append(np.asarray(im))
    return _stack(arrays, where)


def _arrays(values: list, where: str, image_size: int | None) -> torch.Tensor:
    try:
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
    except (TypeError, ValueError):
        raise UserError(f"{where}: the image column holds ragged or non-numeric arrays") from None
    out = []
    for i, a in enumerate(arrays):
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
            a = a.transpose(1, 2, 0)  # [C,H,W] -> [H,W,C]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
            raise UserError(f"{where}, row {i}: pixel array of shape {list(a.shape)}; expected [H,W] or [H,W,C] with C 1 or 3")
        if a.min() < 0 or a.max() > 255:
            raise UserError(f"{where}, row {i}: pixel values must lie in 0..255")
        out.append(a.round().astype(np.uint8))
    if image_size:
        from PIL import Image

        out = [np.asarray(Image.fromarray(a.squeeze(-1) if a.ndim == 3 and a.shape[2] == 1 else a)
                          .resize((image_size, image_size), Image.BILINEAR)) for a in out]
    return _stack(out, where)


def _stack(arrays: list[np.ndarray], where: str) -> torch.Tensor:
    if not arrays:
        return torch.zeros(0, 1, 1, 1, dtype=torch.uint8)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise UserError(f"{where}: images have different sizes ({', '.join(map(str, sorted(shapes)[:3]))}); "
                        "set data.image_size to resize them")
    x = torch.from_numpy(np.stack(arrays))
    return (x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)).contiguous()


def _labels(column: Any, where: str) -> tuple[torch.Tensor | None, list[str] | None]:
    """Integer labels, or (None, the strings) for a column of class names."""
    import pyarrow as pa

    values = column.to_pylist()
    if None in values:
        raise UserError(f"{where}: the label column is empty at row {values.index(None)}; fix or drop the row")
    typ = column.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return None, [str(v) for v in values]
    if pa.types.is_integer(typ):
        return torch.tensor(values, dtype=torch.int64), None
    if pa.types.is_floating(typ):
        y = torch.tensor(values, dtype=torch.float64)
        bad = y != y.round()
        if bad.any():
            i = int(bad.nonzero()[0, 0])
            raise UserError(f"{where}: labels must be integer class indices; label {values[i]} at row {i}")
        return y.long(), None
    raise UserError(f"{where}: the label column has type {typ}; expected integer class indices or class names")
