"""``condensery eval``: .safetensors sets, ImageFolder sets of PNGs the test writes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from condensery import SyntheticSet, UserError
from condensery._engine.plugins import get_registry
from condensery_eval.sets import load_set
from PIL import Image

from .conftest import digits_recipe, task_context

RECIPE = digits_recipe('evalcmd', width=16, runs=2, epochs=3)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "eval.yaml"
    path.write_text(RECIPE)  # no synthesizer section: eval does not need one
    return path


@pytest.fixture(scope="module")
def ctx(recipe):
    return task_context(recipe)


@pytest.fixture(scope="module")
def set_file(ctx, tmp_path_factory) -> Path:
    s = ctx.random_subset(2, stream="eval-command-test")
    s.metadata.update(method="handpicked", class_names=ctx.task.class_names, mean=ctx.task.mean, std=ctx.task.std)
    return s.save(tmp_path_factory.mktemp("set") / "set.safetensors")


def write_folder(ctx, root: Path, per_class: int = 2, names=None, size=None) -> torch.Tensor:
    """PNGs of real digits in ROOT/<class>/; returns the pixels written (uint8 [N,1,8,8])."""
    written = []
    for c in range(ctx.task.num_classes):
        folder = root / (names[c] if names else str(c))
        folder.mkdir(parents=True, exist_ok=True)
        idx = ctx.data.class_indices[c][:per_class]
        pixels = (ctx.data.denormalize(ctx.data.train_x[idx]).clamp(0, 1) * 255).round().to(torch.uint8)
        for i, img in enumerate(pixels):
            im = Image.fromarray(img[0].numpy(), mode="L")
            (im.resize(size) if size else im).save(folder / f"{i}.png")
        written.append(pixels)
    return torch.cat(written)


def test_eval_of_a_safetensors_set_writes_run_metrics(cli, recipe, set_file, tmp_path):
    out = tmp_path / "out"
    r = cli("eval", str(set_file), "--recipe", str(recipe), "-o", str(out), "--quiet")
    assert r.code == 0, r.err
    m = json.loads((out / "metrics.json").read_text())
    assert (m["method"], m["dataset"], m["ipc"], m["num_images"]) == ("handpicked", "digits", 2, 20)
    assert [(x["evaluator"], x["model"], x["set"], x["runs"]) for x in m["results"]] == [
        ("hard-label", "convnet", "synthetic", 2), ("hard-label", "convnet", "random", 2)]
    for x in m["results"]:
        assert 0 <= x["mean"] <= 1 and len(x["values"]) == 2 and x["std"] >= 0
    assert (out / "recipe.yaml").is_file()
    # --set reaches the evaluators, and the default output sits next to the set
    r = cli("eval", str(set_file), "--recipe", str(recipe), "--set", "evaluators.0.runs=1", "--quiet")
    assert r.code == 0, r.err
    m = json.loads((set_file.parent / "eval-evalcmd" / "metrics.json").read_text())
    assert [x["runs"] for x in m["results"]] == [1, 1]


def test_a_set_in_another_normalisation_is_converted(ctx, set_file, tmp_path):
    s = SyntheticSet.load(set_file)
    unit = s.images * torch.tensor(ctx.task.std)[None, :, None, None] + torch.tensor(ctx.task.mean)[None, :, None, None]
    other = SyntheticSet(unit, s.labels, metadata={"mean": [0.0], "std": [1.0]})
    loaded = load_set(other.save(tmp_path / "unit.safetensors"), ctx.task)
    assert torch.allclose(loaded.images, s.images, atol=1e-5)


def test_eval_of_an_image_folder(cli, ctx, recipe, tmp_path):
    pixels = write_folder(ctx, tmp_path / "pngs")
    loaded = load_set(tmp_path / "pngs", ctx.task)
    expected = ctx.data.train_x[torch.cat([ctx.data.class_indices[c][:2] for c in range(10)])]
    # PNG quantisation is the only difference from the real images
    assert loaded.labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert (loaded.images - expected).abs().max() < 1.0 / 255 / min(ctx.task.std) + 1e-4
    assert pixels.shape == (20, 1, 8, 8)
    r = cli("eval", str(tmp_path / "pngs"), "--recipe", str(recipe), "-o", str(tmp_path / "o"), "--quiet")
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["num_images"] == 20 and m["ipc"] == 2 and {x["set"] for x in m["results"]} == {"synthetic", "random"}


def test_image_folder_class_names_may_match_the_dataset(ctx, tmp_path):
    # digits' class names are "0".."9"; folders in a shuffled order map by name, not position
    write_folder(ctx, tmp_path / "f", per_class=1)
    (tmp_path / "f" / "3").rename(tmp_path / "f" / "tmp")
    (tmp_path / "f" / "7").rename(tmp_path / "f" / "3")
    (tmp_path / "f" / "tmp").rename(tmp_path / "f" / "7")
    loaded = load_set(tmp_path / "f", ctx.task)
    expected = ctx.data.train_x[ctx.data.class_indices[3][:1]]
    assert (loaded.images[loaded.labels == 7] - expected).abs().max() < 0.1


def _one_line_error(r, *fragments: str) -> None:
    assert r.code == 2, (r.code, r.out, r.err)
    assert r.err.startswith("error: ") and r.err.strip().count("\n") == 0, r.err
    for f in fragments:
        assert f in r.err, r.err


def test_errors_exit_2_with_one_line(cli, ctx, recipe, tmp_path):
    r = cli("eval", str(tmp_path / "missing.safetensors"), "--recipe", str(recipe))
    _one_line_error(r, "does not exist")

    r = cli("eval", str(tmp_path), "--recipe", str(tmp_path / "nope.yaml"))
    _one_line_error(r, "nope.yaml")

    SyntheticSet(torch.zeros(10, 3, 8, 8), torch.arange(10)).save(tmp_path / "rgb.safetensors")
    _one_line_error(cli("eval", str(tmp_path / "rgb.safetensors"), "--recipe", str(recipe)), "shape [3, 8, 8]")

    SyntheticSet(torch.zeros(2, 1, 8, 8), torch.tensor([0, 12])).save(tmp_path / "labels.safetensors")
    _one_line_error(cli("eval", str(tmp_path / "labels.safetensors"), "--recipe", str(recipe)), "outside 0..9")

    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    _one_line_error(cli("eval", str(tmp_path / "junk.safetensors"), "--recipe", str(recipe)), "not a readable")

    (tmp_path / "set.pt").write_bytes(b"pickle would go here")
    _one_line_error(cli("eval", str(tmp_path / "set.pt"), "--recipe", str(recipe)), "neither a .safetensors")

    write_folder(ctx, tmp_path / "cats", per_class=1, names=[f"cat{i}" for i in range(10)])
    _one_line_error(cli("eval", str(tmp_path / "cats"), "--recipe", str(recipe)), "class 'cat0'", "number them")

    write_folder(ctx, tmp_path / "big", per_class=1, size=(16, 16))
    _one_line_error(cli("eval", str(tmp_path / "big"), "--recipe", str(recipe)), "16x16", "8x8")

    (tmp_path / "empty" / "0").mkdir(parents=True)
    _one_line_error(cli("eval", str(tmp_path / "empty"), "--recipe", str(recipe)), "no images")

    _one_line_error(cli("eval", str(tmp_path / "big"), "--recipe", str(recipe), "--set", "evaluators.0.runz=1"),
                    "runz")


def test_an_interrupted_eval_resumes_from_its_finished_pairs(recipe, set_file, tmp_path, monkeypatch):
    from condensery_eval.evaluate import run_eval
    from condensery_eval.hard_label import HardLabelEvaluator

    evaluate, seen = HardLabelEvaluator.evaluate, []

    def killed_on_random(self, synset, ctx):
        seen.append(synset.metadata["role"])
        if seen == ["synthetic", "random"]:
            raise KeyboardInterrupt
        return evaluate(self, synset, ctx)

    monkeypatch.setattr(HardLabelEvaluator, "evaluate", killed_on_random)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_eval(set_file, recipe, out, [], get_registry())
    [kept] = (out / "checkpoints").glob("evaluate-*.json")
    # another recipe (here: other overrides) is another evaluation: refused in this folder unless forced,
    # and even then it never takes this one's finished pairs
    with pytest.raises(UserError, match="holds the evaluation of another set or recipe"):
        run_eval(set_file, recipe, out, ["evaluators.0.runs=1"], get_registry())
    run_eval(set_file, recipe, out, ["evaluators.0.runs=1"], get_registry(), force=True)
    assert seen[2:] == ["synthetic", "random"] and kept.exists()
    metrics, _ = run_eval(set_file, recipe, out, [], get_registry(), force=True)
    assert seen[4:] == ["random"]  # the synthetic pair was not redone
    assert [r["set"] for r in metrics["results"]] == ["synthetic", "random"]
    assert not kept.exists()  # finished: the next eval of the set starts afresh
