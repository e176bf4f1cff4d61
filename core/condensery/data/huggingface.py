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

Reading the location is ``hf_read``, decoding its columns ``hf_decode``; their names are
re-exported here.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..api.data import DatasetSource, RawSplits
from ..api.errors import UserError
from .hf_decode import _class_label_names, _labels, _pick, decode_images
from .hf_read import _URL, Part, local_path, read_location
from .options import HuggingFaceOptions

IMAGE_COLUMNS = ("image", "img")
LABEL_COLUMNS = ("label", "labels")



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

        from .files import _fingerprint_files

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
