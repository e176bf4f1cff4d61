"""The ``huggingface`` data source: a local Hugging Face ``datasets`` folder or parquet files.

Reads, never downloads:

* a folder written by ``DatasetDict.save_to_disk`` (``dataset_dict.json`` and one folder
  per split) or by ``Dataset.save_to_disk`` (one split; the test split then comes from
  ``test_path``), through ``datasets.load_from_disk`` when ``datasets`` is installed, else
  straight from its Arrow files with pyarrow;
* a ``.parquet`` file, or a folder of them (as the Hub's parquet export lays them out:
  ``train-00000-of-00001.parquet``, ``data/test-*.parquet``, ``train/0000.parquet``),
  a file belonging to a split when its name starts with the split name or a folder on its
  path is named like it.

Images are the ``datasets`` ``Image`` feature (``{"bytes": ..., "path": ...}``, decoded
with PIL), raw encoded bytes, or pixel arrays (``[H,W]`` / ``[H,W,C]``). Class names come
from ``class_names``, else the label column's ``ClassLabel`` feature, else the sorted
string labels, else the numbers. Anything that is not an existing local path (a Hub id,
a URL) is refused in one line.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from ..errors import UserError
from .source import DatasetOptions, DatasetSource, RawSplits

IMAGE_COLUMNS = ("image", "img")
LABEL_COLUMNS = ("label", "labels")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HINT = ("condensery never downloads: save the dataset locally first, e.g. "
         "datasets.load_dataset(NAME).save_to_disk(DIR), and give DIR")


class HuggingFaceOptions(DatasetOptions):
    path: str = Field(..., description="local folder written by datasets' save_to_disk, or a .parquet file / folder of them")
    test_path: str | None = Field(None, description="the test split's own save_to_disk folder or parquet file(s), "
                                                    "when path holds only the training split")
    train_split: str = Field("train", description="name of the training split")
    test_split: str = Field("test", description="name of the test split")
    image_column: str | None = Field(None, description="column of the images (default: 'image' or 'img')")
    label_column: str | None = Field(None, description="column of the class labels (default: 'label' or 'labels')")
    class_names: list[str] | None = Field(None, description="class names (default: the ClassLabel feature's names)")
    image_size: int | None = Field(None, ge=1, description="resize to this square size (needed when sizes differ)")


def local_path(text: str, key: str) -> Path:
    """``text`` as an existing local path, or a one-line refusal (never a download)."""
    import os

    if _URL.match(text):
        raise UserError(f"{key} '{text}' is a URL, not a local path; {_HINT}")
    path = Path(os.path.expandvars(os.path.expanduser(text)))
    if not path.exists():
        hub = bool(re.fullmatch(r"[\w.-]+/[\w.-]+", text)) and not text.startswith(".")
        what = "is not a local path (a Hub dataset id?)" if hub else "does not exist"
        raise UserError(f"{key} '{text}' {what}; {_HINT}")
    return path


#: one split: (arrow table, the datasets ``features`` JSON if known, where it came from)
Part = tuple[Any, dict | None, Path]


def _parquet_features(pq_file) -> dict | None:
    meta = pq_file.schema_arrow.metadata or {}
    raw = meta.get(b"huggingface")
    if not raw:
        return None
    try:
        return (json.loads(raw).get("info") or {}).get("features")
    except (json.JSONDecodeError, AttributeError):
        return None


def _info_features(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "dataset_info.json").read_text()).get("features")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _read_parquet(files: list[Path]) -> Part:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, features = [], None
    for f in files:
        try:
            pf = pq.ParquetFile(f)
            tables.append(pf.read())
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"'{f}' is not a readable parquet file ({str(exc).splitlines()[0]})") from None
        features = features or _parquet_features(pf)
    try:
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    except pa.ArrowException as exc:
        raise UserError(f"the parquet files of '{files[0].parent}' have different columns ({str(exc).splitlines()[0]})") from None
    return table, features, files[0] if len(files) == 1 else files[0].parent


def _read_saved(folder: Path) -> Part:
    """One split written by ``Dataset.save_to_disk``."""
    try:
        import datasets
    except ImportError:
        datasets = None
    if datasets is not None:
        try:
            ds = datasets.load_from_disk(str(folder))
        except Exception as exc:  # noqa: BLE001 - any failure to read the folder is the folder's
            raise UserError(f"'{folder}' is not a readable datasets folder ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        return ds.with_format("arrow")[:], _info_features(folder), folder
    import pyarrow as pa

    try:
        state = json.loads((folder / "state.json").read_text())
        files = [folder / f["filename"] for f in state["_data_files"]]
        tables = []
        for f in files:
            with pa.memory_map(str(f)) as source:
                tables.append(pa.ipc.open_stream(source).read_all())
    except (OSError, KeyError, TypeError, json.JSONDecodeError, pa.ArrowException) as exc:
        raise UserError(f"'{folder}' is not a readable datasets folder ({type(exc).__name__}); "
                        "write it again with save_to_disk") from None
    return (pa.concat_tables(tables) if len(tables) > 1 else tables[0]), _info_features(folder), folder


def _split_of(rel: Path, names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in rel.parts[:-1] or re.match(rf"{re.escape(name)}([-_.]|$)", rel.name):
            return name
    return None


def read_location(path: Path, names: tuple[str, ...]) -> tuple[dict[str | None, Part], list[str]]:
    """The splits among ``names`` at ``path`` (``None``: one unnamed split), and every split name there."""
    if path.is_file():
        if path.suffix != ".parquet":
            raise UserError(f"'{path}' is not a .parquet file; give a parquet file, a folder of them, "
                            "or a folder written by save_to_disk")
        return {None: _read_parquet([path])}, []
    if (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        except (OSError, KeyError, TypeError, json.JSONDecodeError):
            raise UserError(f"'{path / 'dataset_dict.json'}' is damaged; write the dataset again with save_to_disk") from None
        return {str(s): _read_saved(path / str(s)) for s in splits if str(s) in names}, [str(s) for s in splits]
    if (path / "state.json").is_file():
        return {None: _read_saved(path)}, []
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    if not files:
        raise UserError(f"'{path}' holds neither a save_to_disk dataset (dataset_dict.json or state.json) "
                        "nor .parquet files")
    groups: dict[str | None, list[Path]] = {}
    for f in files:
        groups.setdefault(_split_of(f.relative_to(path), names), []).append(f)
    if set(groups) != {None}:
        groups.pop(None, None)  # files of other splits (e.g. validation) when named splits exist
    return {k: _read_parquet(v) for k, v in groups.items()}, [k for k in groups if k]


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


class HuggingFace(DatasetSource):
    """A local Hugging Face ``datasets`` folder (``save_to_disk``) or parquet files; never downloads."""

    Options = HuggingFaceOptions

    def _splits(self) -> tuple[Part, Part]:
        o = self.options
        names = (o.train_split, o.test_split)
        main = local_path(o.path, "data.path")
        found, every = read_location(main, names)
        if o.test_path is None:
            missing = [n for n in names if n not in found]
            if missing:
                have = f"splits {', '.join(every)}" if every else "one unnamed split"
                raise UserError(f"'{main}' has {have} but no split '{missing[0]}'; name the splits with "
                                "data.train_split / data.test_split, or give the test split as data.test_path")
            return found[o.train_split], found[o.test_split]
        train = found.get(o.train_split) or (found.get(None) if len(found) == 1 else None)
        if train is None:
            raise UserError(f"'{main}' has no split '{o.train_split}'; set data.train_split")
        test_loc = local_path(o.test_path, "data.test_path")
        tests, _ = read_location(test_loc, names)
        test = tests.get(o.test_split) or (next(iter(tests.values())) if len(tests) == 1 else None)
        if test is None:
            raise UserError(f"'{test_loc}' has no split '{o.test_split}'; set data.test_split")
        return train, test

    def load(self) -> RawSplits:
        o = self.options
        out: list[tuple[torch.Tensor, torch.Tensor | None, list[str] | None]] = []
        names = o.class_names
        for split, (table, features, where) in zip(("train", "test"), self._splits()):
            label = f"data '{where}' ({split} split)"
            columns = list(table.column_names)
            image_col = _pick(columns, o.image_column, IMAGE_COLUMNS, "image", "image_column", where)
            label_col = _pick(columns, o.label_column, LABEL_COLUMNS, "label", "label_column", where)
            base = where if where.is_dir() else where.parent
            x = decode_images(table.column(image_col), label, base, o.image_size)
            y, strings = _labels(table.column(label_col), label)
            names = names or _class_label_names(features, label_col)
            out.append((x, y, strings))
        (xtr, ytr, str_tr), (xte, yte, str_te) = out
        if xtr.shape[1:] != xte.shape[1:]:
            raise UserError(f"train images are {list(xtr.shape[1:])} but test images are {list(xte.shape[1:])}; "
                            "set data.image_size to resize both")
        if (str_tr is None) != (str_te is None):
            raise UserError("one split labels by class name and the other by number; label both the same way")
        if str_tr is not None:
            names = names or sorted(set(str_tr))
            index = {n: i for i, n in enumerate(names)}
            unknown = next((s for s in (*str_tr, *str_te) if s not in index), None)
            if unknown is not None:
                raise UserError(f"label '{unknown}' is not one of the classes {', '.join(names[:10])}; "
                                "fix the label or data.class_names")
            ytr = torch.tensor([index[s] for s in str_tr], dtype=torch.int64)
            yte = torch.tensor([index[s] for s in str_te], dtype=torch.int64)
        if names is None:
            k = int(max(ytr.max(), yte.max())) + 1 if len(ytr) and len(yte) else 1
            names = [str(i) for i in range(k)]
        return RawSplits(xtr, ytr, xte, yte, list(names))

    def fingerprint(self) -> str | None:
        import os

        from .sources import _fingerprint_files

        files: list[Path] = []
        for text in (self.options.path, self.options.test_path):
            if text is None:
                continue
            p = Path(os.path.expandvars(os.path.expanduser(text)))
            if _URL.match(text) or not p.exists():
                return None
            files += [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        o = self.options
        keys = [o.train_split, o.test_split, o.image_column, o.label_column, o.class_names, o.image_size]
        return _fingerprint_files(files) + ":" + json.dumps(keys) if files else None
