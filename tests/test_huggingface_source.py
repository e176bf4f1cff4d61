"""The ``huggingface`` data source: local ``save_to_disk`` folders and parquet files, read
through a recipe's data section, never downloaded. The tests write their own tiny data."""

from __future__ import annotations

import io
import socket
import sys

import numpy as np
import pytest
import torch
from condensery import UserError, open_task
from condensery._engine.plugins import get_registry

datasets = pytest.importorskip("datasets")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

NAMES = ["cat", "dog", "owl"]


def pixels(n: int, seed: int, channels: int = 1, size: int = 8) -> np.ndarray:
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def hf_split(x: np.ndarray, y: list[int]):
    from PIL import Image

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=NAMES)})
    return datasets.Dataset.from_dict({"image": [Image.fromarray(a) for a in x], "label": y}, features=feats)


def tiny(seed: int = 0, channels: int = 1, size: int = 8):
    """(train pixels, train labels, test pixels, test labels): 4 train and 2 test images per class."""
    return pixels(12, seed, channels, size), [i % 3 for i in range(12)], pixels(6, seed + 1, channels, size), [i % 3 for i in range(6)]


def open_data(data: dict):
    doc = {"name": "hf", "data": {"name": "huggingface", "val_fraction": 0.0, "normalize": False, **data},
           "model": {"name": "convnet", "depth": 1, "width": 4}, "evaluators": [{"name": "hard-label", "runs": 1, "epochs": 1}]}
    _, ctx = open_task(doc, get_registry(), announce=False)
    return ctx


def as_nchw(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(x).float() / 255
    return t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the huggingface source tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_dataset_dict_folder_reads_splits_class_names_and_exact_pixels(tmp_path, no_network):
    xtr, ytr, xte, yte = tiny()
    datasets.DatasetDict({"train": hf_split(xtr, ytr), "test": hf_split(xte, yte)}).save_to_disk(str(tmp_path / "ds"))
    ctx = open_data({"path": str(tmp_path / "ds")})
    d = ctx.data
    assert d.class_names == NAMES and d.image_shape == (1, 8, 8)
    assert torch.equal(d.train_y.cpu(), torch.tensor(ytr)) and torch.equal(d.test_y.cpu(), torch.tensor(yte))
    assert torch.allclose(d.train_x.cpu(), as_nchw(xtr)) and torch.allclose(d.test_x.cpu(), as_nchw(xte))


def test_without_the_datasets_library_the_arrow_files_are_read_with_pyarrow(tmp_path, monkeypatch):
    xtr, ytr, xte, yte = tiny(seed=3, channels=3)
    datasets.DatasetDict({"train": hf_split(xtr, ytr), "test": hf_split(xte, yte)}).save_to_disk(str(tmp_path / "ds"))
    with_lib = open_data({"path": str(tmp_path / "ds"), "cache": False}).data
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails
    without = open_data({"path": str(tmp_path / "ds"), "cache": False}).data
    assert without.image_shape == (3, 8, 8) and without.class_names == NAMES
    assert torch.equal(without.train_x, with_lib.train_x) and torch.equal(without.test_y, with_lib.test_y)


def test_single_saved_split_with_test_path_and_resize(tmp_path):
    xtr, ytr, xte, yte = tiny(size=10)
    hf_split(xtr, ytr).save_to_disk(str(tmp_path / "train"))
    hf_split(xte, yte).save_to_disk(str(tmp_path / "test"))
    d = open_data({"path": str(tmp_path / "train"), "test_path": str(tmp_path / "test"), "image_size": 6}).data
    assert d.image_shape == (1, 6, 6) and len(d.train_x) == 12 and len(d.test_x) == 6


def test_parquet_folder_in_the_hub_layout_keeps_class_names(tmp_path, no_network):
    xtr, ytr, xte, yte = tiny(seed=5)
    (tmp_path / "pq" / "data").mkdir(parents=True)
    hf_split(xtr, ytr).to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    hf_split(xte, yte).to_parquet(str(tmp_path / "pq" / "data" / "test-00000-of-00001.parquet"))
    hf_split(xte[:3], yte[:3]).to_parquet(str(tmp_path / "pq" / "data" / "validation-00000-of-00001.parquet"))
    d = open_data({"path": str(tmp_path / "pq")}).data
    assert d.class_names == NAMES and len(d.train_x) == 12 and len(d.test_x) == 6
    assert torch.allclose(d.train_x.cpu(), as_nchw(xtr))


def png_bytes(a: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_plain_parquet_files_with_other_columns_and_string_labels(tmp_path):
    """Parquet written by other tools: an ``img`` column of encoded bytes, class names as labels."""
    xtr, ytr, xte, yte = tiny(seed=7)
    for name, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        table = pa.table({"img": [png_bytes(a) for a in x], "label": [NAMES[::-1][k] for k in y]})
        pq.write_table(table, str(tmp_path / f"{name}.parquet"))
    d = open_data({"path": str(tmp_path / "train.parquet"), "test_path": str(tmp_path / "test.parquet")}).data
    assert d.class_names == sorted(NAMES)  # owl, dog, cat -> sorted names
    want = torch.tensor([sorted(NAMES).index(NAMES[::-1][k]) for k in ytr])
    assert torch.equal(d.train_y.cpu(), want)
    # columns named explicitly; pixel arrays instead of encoded images
    table = pa.table({"pix": [a.tolist() for a in xtr], "y": ytr})
    pq.write_table(table, str(tmp_path / "arr.parquet"))
    d = open_data({"path": str(tmp_path / "arr.parquet"), "test_path": str(tmp_path / "arr.parquet"),
                   "image_column": "pix", "label_column": "y", "class_names": NAMES}).data
    assert d.class_names == NAMES and torch.allclose(d.train_x.cpu(), as_nchw(xtr))


def test_decoded_once_then_cached(tmp_path, monkeypatch):
    from condensery.data import huggingface

    xtr, ytr, xte, yte = tiny(seed=9)
    datasets.DatasetDict({"train": hf_split(xtr, ytr), "test": hf_split(xte, yte)}).save_to_disk(str(tmp_path / "ds"))
    first = open_data({"path": str(tmp_path / "ds")}).data

    def no_decoding(self):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(huggingface.HuggingFace, "load", no_decoding)
    assert torch.equal(open_data({"path": str(tmp_path / "ds")}).data.train_x, first.train_x)


@pytest.mark.parametrize("path, message", [
    ("cifar10/plain_text", "is not a local path (a Hub dataset id?)"),
    ("hf://datasets/cifar10", "is a URL"),
    ("https://example.org/x.parquet", "is a URL"),
])
def test_anything_not_local_is_refused_without_downloading(path, message, no_network):
    with pytest.raises(UserError, match=r"never downloads") as info:
        open_data({"path": path})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_inputs_are_one_line_errors(tmp_path):
    xtr, ytr, xte, yte = tiny()
    pq.write_table(pa.table({"picture": [png_bytes(a) for a in xtr], "label": ytr}), str(tmp_path / "a.parquet"))
    with pytest.raises(UserError, match="no image column .*picture.*data.image_column"):
        open_data({"path": str(tmp_path / "a.parquet"), "test_path": str(tmp_path / "a.parquet")})
    hf_split(xtr, ytr).save_to_disk(str(tmp_path / "one"))
    with pytest.raises(UserError, match="no split 'train'.*data.test_path"):
        open_data({"path": str(tmp_path / "one")})
    pq.write_table(pa.table({"image": [png_bytes(a) for a in xtr], "label": [-1] * 12}), str(tmp_path / "neg.parquet"))
    with pytest.raises(UserError, match="label -1"):
        open_data({"path": str(tmp_path / "neg.parquet"), "test_path": str(tmp_path / "neg.parquet")})
    pq.write_table(pa.table({"image": [b"not a png"] * 12, "label": ytr}), str(tmp_path / "junk.parquet"))
    with pytest.raises(UserError, match="row 0: not a decodable image"):
        open_data({"path": str(tmp_path / "junk.parquet"), "test_path": str(tmp_path / "junk.parquet")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="neither a save_to_disk dataset"):
        open_data({"path": str(tmp_path / "empty")})
