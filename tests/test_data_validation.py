"""Bad data stops a run at load, in one line naming the file (or split) and the first bad index."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from .conftest import write_recipe

RECIPE = """
name: dv
seed: 0
data: {{name: {name}, {options}, val_fraction: 0.0, cache: false}}
model: {{name: convnet, depth: 1, width: 4}}
synthesizer: {{name: random, ipc: 1}}
evaluators: [{{name: hard-label, runs: 1, epochs: 1}}]
"""


def tensors(path, n=12, k=3, labels=None, images=None):
    x = torch.randint(0, 255, (n, 1, 4, 4), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    save_file({"images": x if images is None else images,
               "labels": torch.arange(n) % k if labels is None else labels}, str(path))
    return path


def folder(root, classes=("cat", "dog"), per_class=2, size=4):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def with_nan(path):
    x = torch.rand(12, 1, 4, 4)
    x[7, 0, 1, 1] = float("nan")
    return tensors(path, images=x)


CASES = {
    "test label -1": (lambda d: (tensors(d / "tr.st"), tensors(d / "te.st", labels=torch.tensor([0, 1, 2, -1] * 3))),
                      ["te.st", "label -1 at index 3"]),
    "label past class_names": (lambda d: (tensors(d / "tr.st", labels=torch.tensor([0, 1, 2] * 3 + [0, 1, 5])),
                                          tensors(d / "te.st")),
                               ["tr.st", "label 5 at index 11", "class_names"], "class_names: [a, b, c]"),
    "fractional labels": (lambda d: (tensors(d / "tr.st", labels=torch.tensor([0.0, 1.5, 2.0] * 4)), tensors(d / "te.st")),
                          ["tr.st", "integer class indices", "index 1"]),
    "nan pixel": (lambda d: (with_nan(d / "tr.st"), tensors(d / "te.st")), ["tr.st", "image 7", "non-finite"]),
    "empty class": (lambda d: (tensors(d / "tr.st", labels=torch.tensor([0, 2] * 6)), tensors(d / "te.st")),
                    ["class 1", "no images"], "class_names: [a, b, c]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_tensors_data_is_one_line_exit_2(cli, tmp_path, case):
    make, expected, *extra = CASES[case]
    tr, te = make(tmp_path)
    options = f"train: {tr}, test: {te}" + (f", {extra[0]}" if extra else "")
    recipe = write_recipe(tmp_path / "r.yaml", RECIPE.format(name="tensors", options=options))
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"))
    assert res.code == 2, res.err
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    for text in expected:
        assert text in res.err, res.err
    assert not (tmp_path / "run" / "synthetic.safetensors").exists()


def test_empty_class_folder_and_corrupt_image_are_named(cli, tmp_path):
    root = folder(tmp_path / "ds")
    (root / "train" / "bird").mkdir()
    (root / "test" / "bird").mkdir()
    recipe = write_recipe(tmp_path / "r.yaml", RECIPE.format(name="imagefolder", options=f"root: {root}, workers: 0"))
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"))
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    assert "bird" in res.err and "give every class folder images" in res.err
    (root / "train" / "bird").rmdir()
    (root / "test" / "bird").rmdir()
    (root / "train" / "dog" / "9.png").write_bytes(b"\x89PNG but not really")
    res = cli("run", str(recipe), "-o", str(tmp_path / "run2"))
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    assert "9.png" in res.err and "not a decodable image" in res.err


def test_an_evaluated_set_with_nan_pixels_is_refused(cli, tmp_path):
    from condensery import SyntheticSet

    images = torch.zeros(10, 1, 8, 8)
    images[4, 0, 0, 0] = float("inf")
    SyntheticSet(images, torch.arange(10)).save(tmp_path / "set.safetensors")
    recipe = write_recipe(tmp_path / "e.yaml", "name: e\ndata: {name: digits}\nevaluators: [{name: hard-label, runs: 1, epochs: 1}]\n")
    res = cli("eval", str(tmp_path / "set.safetensors"), "--recipe", str(recipe), "-o", str(tmp_path / "ev"))
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    assert "image 4 has non-finite pixels" in res.err
