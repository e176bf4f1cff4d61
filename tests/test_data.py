"""Datasets: digits with no files, torchvision formats and folders written by the tests, caching."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from condensery._engine.plugins import get_registry
from condensery.api.data import RealData
from condensery.api.errors import UserError
from condensery.api.options import validate_options
from condensery.data.realdata import cache_dir, load_raw
from safetensors.torch import save_file


def source(name: str, **options):
    cls = get_registry().get("dataset", name).obj
    return cls(validate_options(cls.Options, options, f"data '{name}'"))


def realdata(name: str, **options) -> RealData:
    src = source(name, **options)
    raw = load_raw(name, src)
    return RealData.from_raw(name, raw, src.options.val_fraction, src.options.normalize)


def test_digits_fixed_split_and_normalisation():
    a, b = realdata("digits"), realdata("digits")
    assert a.image_shape == (1, 8, 8) and a.num_classes == 10
    assert len(a.train_x) + len(a.val_x) + len(a.test_x) == 1797
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.val_y, b.val_y)
    assert abs(float(a.train_x.mean())) < 1e-4 and abs(float(a.train_x.std()) - 1) < 1e-2
    assert 0.09 < len(a.val_x) / (len(a.train_x) + len(a.val_x)) < 0.11
    # the validation split holds every class and never overlaps train
    assert set(a.val_y.tolist()) == set(range(10))


def test_class_indexed_sampling_is_balanced_and_seeded():
    d = realdata("digits")
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    x1, y1 = d.balanced_batch(5, g1)
    x2, _ = d.balanced_batch(5, g2)
    assert torch.equal(x1, x2)
    assert y1.tolist() == [c for c in range(10) for _ in range(5)]
    idx = d.class_batch_indices(4, 20, torch.Generator().manual_seed(0))
    assert len(set(idx.tolist())) == 20 and (d.train_y[idx] == 4).all()


def test_balanced_batch_rejects_too_large_ipc():
    d = realdata("digits")
    with pytest.raises(UserError, match="fewer than the 1000 per class"):
        d.balanced_indices(1000, torch.Generator())


def _write_tensors(path, n=30, c=3, hw=6, k=3, dtype=torch.uint8):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (n, c, hw, hw), generator=g).to(dtype)
    labels = torch.arange(n) % k
    save_file({"images": images, "labels": labels}, str(path))
    return images, labels


def test_tensors_source(tmp_path):
    x, y = _write_tensors(tmp_path / "train.safetensors")
    _write_tensors(tmp_path / "test.safetensors", n=9)
    d = realdata("tensors", train=str(tmp_path / "train.safetensors"), test=str(tmp_path / "test.safetensors"), val_fraction=0.0)
    assert d.image_shape == (3, 6, 6) and d.num_classes == 3 and len(d.train_x) == 30
    restored = d.denormalize(d.train_x)
    assert torch.allclose(restored, x.float() / 255, atol=1e-5)


def test_tensors_source_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        realdata("tensors", train=str(tmp_path / "nope.safetensors"), test=str(tmp_path / "nope.safetensors"))
    save_file({"images": torch.zeros(2, 1, 4, 4)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(UserError, match="lacks tensor"):
        realdata("tensors", train=str(tmp_path / "bad.safetensors"), test=str(tmp_path / "bad.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a file at all")
    with pytest.raises(UserError, match="not a readable .safetensors"):
        realdata("tensors", train=str(tmp_path / "junk.safetensors"), test=str(tmp_path / "junk.safetensors"))


def _idx(path, arr: np.ndarray, gz: bool = False):
    header = struct.pack(">HBB", 0, 8, arr.ndim) + b"".join(struct.pack(">I", s) for s in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def test_mnist_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _idx(raw / "train-images-idx3-ubyte", rng.integers(0, 255, (40, 28, 28)))
    _idx(raw / "train-labels-idx1-ubyte", np.arange(40) % 10)
    _idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 255, (20, 28, 28)))
    _idx(raw / "t10k-labels-idx1-ubyte", np.arange(20) % 10)
    d = realdata("mnist", root=str(tmp_path), val_fraction=0.0)
    assert d.image_shape == (1, 28, 28) and len(d.train_x) == 40 and len(d.test_x) == 20 and d.num_classes == 10


def test_mnist_missing_gives_layout(tmp_path):
    with pytest.raises(UserError, match="MNIST/raw/train-images-idx3-ubyte"):
        realdata("mnist", root=str(tmp_path))


def _cifar_batch(path, n, rng, label_key="labels"):
    batch = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), label_key.encode(): [int(i) % 10 for i in range(n)]}
    path.write_bytes(pickle.dumps(batch))


def test_cifar10_batches(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _cifar_batch(base / f"data_batch_{i}", 10, rng)
    _cifar_batch(base / "test_batch", 10, rng)
    (base / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))
    d = realdata("cifar10", root=str(tmp_path), val_fraction=0.0)
    assert d.image_shape == (3, 32, 32) and len(d.train_x) == 50 and d.class_names[3] == "c3"


def test_cifar_loader_refuses_code_in_pickles(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]:
        (base / name).write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(UserError, match="refusing to load builtins.print"):
        realdata("cifar10", root=str(tmp_path))


def test_cifar_missing_gives_layout(tmp_path):
    with pytest.raises(UserError, match="cifar-10-batches-py/data_batch_1"):
        realdata("cifar10", root=str(tmp_path))


def _write_folder(root, classes=("cat", "dog"), per_class=4, size=8):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_imagefolder_decodes_once_then_uses_cache(tmp_path, monkeypatch):
    from condensery.data import image_folder

    _write_folder(tmp_path / "ds")
    d = realdata("imagefolder", root=str(tmp_path / "ds"), val_fraction=0.0, workers=0)
    assert d.class_names == ["cat", "dog"] and d.image_shape == (3, 8, 8) and len(d.train_x) == 8
    assert list(cache_dir().glob("imagefolder-*.safetensors"))

    def no_decoding(self):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(image_folder.ImageFolder, "load", no_decoding)
    again = realdata("imagefolder", root=str(tmp_path / "ds"), val_fraction=0.0, workers=0)
    assert torch.equal(again.train_x, d.train_x)
    # a changed file changes the fingerprint, so the data is decoded anew
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "ds" / "train" / "cat" / "9.png")
    with pytest.raises(AssertionError, match="decoded again"):
        realdata("imagefolder", root=str(tmp_path / "ds"), val_fraction=0.0, workers=0)


def test_imagefolder_resize_and_missing(tmp_path):
    _write_folder(tmp_path / "ds", size=10)
    d = realdata("imagefolder", root=str(tmp_path / "ds"), image_size=6, val_fraction=0.0, workers=0, cache=False)
    assert d.image_shape == (3, 6, 6)
    with pytest.raises(UserError, match="ROOT/train/<class>"):
        realdata("imagefolder", root=str(tmp_path / "none"))


def test_class_subset_and_train_cap_relabel_in_given_order():
    from condensery.data.realdata import restrict

    raw = load_raw("digits", source("digits"))
    sub = restrict(raw, ["7", 3], train_per_class=20)
    assert sub.class_names == ["7", "3"]
    assert torch.bincount(sub.train_labels).tolist() == [20, 20]
    # test keeps every image of the chosen classes, relabelled in the order given
    assert torch.bincount(sub.test_labels).tolist() == [
        int((raw.test_labels == 7).sum()), int((raw.test_labels == 3).sum())]
    first_seven = raw.train_images[raw.train_labels == 7][0]
    assert torch.equal(sub.train_images[sub.train_labels == 0][0], first_seven)
    with pytest.raises(UserError, match="index 12"):
        restrict(raw, [12], None)
    with pytest.raises(UserError, match="twice"):
        restrict(raw, [1, 1], None)
