"""The pictures: grid.png (cells of at least 32 px, a class name per row, also for generated
sets) and curves.png (every logged loss against its step, at the end of a run and on resume)."""

from __future__ import annotations

import json

import numpy as np
import torch
from condensery.figures import PAD, loss_curves, read_steps, save_curves, save_grid
from PIL import Image

NAMES = ["cat", "dog", "emu"]


def tiny_set(per_class: int = 2, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 one-channel images, each a constant level, so upscaled cells are easy to find."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    levels = torch.linspace(0.0, 0.6, len(labels))  # in display space; white (1.0) is the padding
    return levels.view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone(), labels


def test_grid_has_one_labelled_row_per_class_with_cells_of_at_least_32_px(tmp_path):
    images, labels = tiny_set()
    path = save_grid(images, labels, [0.0], [1.0], tmp_path / "grid.png", class_names=NAMES)
    arr = np.asarray(Image.open(path))
    cell = 32  # 8 px nearest-neighbour upscaled 4x
    assert arr.shape[0] == PAD + 3 * (cell + PAD)  # one row per class
    cells_only = PAD + 2 * (cell + PAD)
    label_w = arr.shape[1] - cells_only
    assert label_w > 10  # a column for the class names before the cells
    for row in range(3):
        top = PAD + row * (cell + PAD)
        name = arr[top:top + cell, :label_w]
        assert (name < 128).any(), f"no class name drawn in row {row}"
        for j in range(2):
            left = label_w + PAD + j * (cell + PAD)
            block = arr[top:top + cell, left:left + cell]
            assert block.min() == block.max(), "a cell is one upscaled image, nearest neighbour, 32x32"
            assert block[0, 0] == round(255 * float(images[row * 2 + j, 0, 0, 0]))
    # without names the rows are numbered: still a label column
    plain = Image.open(save_grid(images, labels, [0.0], [1.0], tmp_path / "plain.png"))
    assert plain.width > cells_only


def test_grid_rows_soft_labels_by_argmax_and_pads_short_classes(tmp_path):
    images = torch.rand(5, 3, 8, 8)
    soft = torch.nn.functional.one_hot(torch.tensor([0, 0, 0, 1, 2]), 3).float() * 0.7 + 0.1
    grid = Image.open(save_grid(images, soft, [0.5] * 3, [0.25] * 3, tmp_path / "g.png", class_names=NAMES))
    assert grid.mode == "RGB" and grid.height == PAD + 3 * (32 + PAD)
    assert grid.width > PAD + 3 * (32 + PAD)  # three cells in the longest row, plus names


def test_generate_writes_the_grid_next_to_the_set(cli, tmp_path):
    from condensery.generators import save_generator
    from condensery_matching.pool import PoolGenerator

    images, labels = tiny_set(per_class=4)
    config = {"task": {"dataset": "toy", "num_classes": 3, "class_names": NAMES, "image_shape": [1, 8, 8],
                       "mean": [0.0], "std": [1.0]}, "pool_ipc": 4}
    save_generator(PoolGenerator({}, images, labels), tmp_path / "gen", config)
    out = tmp_path / "two.safetensors"
    res = cli("generate", str(tmp_path / "gen"), "--ipc", "2", "-o", str(out))
    assert res.code == 0, res.err
    grid = Image.open(tmp_path / "two.png")
    assert grid.height == PAD + 3 * (32 + PAD)  # 3 classes, 8 px images at 32 px
    assert grid.width > PAD + 2 * (32 + PAD)    # 2 per class and the names


STEPS = [
    {"stage": "experts", "step": 0, "epochs": 2.0},
    {"stage": "synthesize", "step": 0, "loss": 10.0, "subset": 1.0},
    {"stage": "synthesize", "step": 10, "loss": 1.0, "subset": 1.0},
    {"stage": "synthesize", "step": 20, "loss": 0.1, "subset": 1.0},
    {"stage": "synthesize", "step": 10, "resumed": 1.0},  # a second attempt from its checkpoint
    {"stage": "synthesize", "step": 20, "loss": 0.1, "subset": 1.0},
    {"stage": "recover", "step": 0, "batch": 0.0, "loss": 2.0, "ce": 1.5, "bn": 0.5},
    {"stage": "recover", "step": 9, "batch": 0.0, "loss": 0.2, "ce": 0.15, "bn": 0.05},
    {"stage": "recover", "step": 0, "batch": 1.0, "loss": 2.5, "ce": 2.0, "bn": 0.5},
]


def write_steps(path, rows, tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def test_curves_from_a_step_log_with_a_truncated_last_line(tmp_path):
    steps = tmp_path / "logs" / "steps.jsonl"
    write_steps(steps, STEPS, tail='{"stage": "synthesize", "step": 30, "lo')  # killed mid-line
    assert len(read_steps(steps)) == len(STEPS)
    curves = loss_curves(read_steps(steps))
    assert list(curves) == ["synthesize", "recover"]  # stages without a loss are not plotted
    assert list(curves["synthesize"]) == ["loss"]  # counters (subset, resumed) are not losses
    assert set(curves["recover"]) == {"loss", "ce", "bn"}  # a loss's parts are
    assert len(curves["recover"]["loss"]) == 2  # the second batch restarts its steps: a second segment
    path = save_curves(steps, tmp_path / "curves.png", title="t")
    assert path is not None
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= 600 and im.height >= 2 * 250  # two subplots
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temp file left


def test_curves_without_losses_write_nothing(tmp_path):
    steps = tmp_path / "steps.jsonl"
    write_steps(steps, [{"stage": "experts", "step": 0, "epochs": 2.0}], tail="{not json\n")
    assert save_curves(steps, tmp_path / "curves.png") is None and not (tmp_path / "curves.png").exists()
    assert save_curves(tmp_path / "missing.jsonl", tmp_path / "curves.png") is None


def test_curves_written_at_the_end_of_a_run_on_resume_and_on_reuse(cli, tiny_recipe, tmp_path, monkeypatch):
    import condensery._engine.runner as runner

    out = tmp_path / "run"
    short = ("--set", "synthesizer.iterations=2", "--set", "evaluators.0.epochs=1", "--quiet")
    assert cli("run", str(tiny_recipe), "-o", str(out), *short).code == 0
    curves = out / "curves.png"
    assert curves.is_file() and (out / "grid.png").is_file()

    # as if killed during synthesis, mid-line in the step log: the resumed run redraws the
    # first attempt's curves before it goes on, and again at its end
    for name in ("metrics.json", "synthetic.safetensors", "grid.png", "curves.png"):
        (out / name).unlink()
    with (out / "logs" / "steps.jsonl").open("a") as f:
        f.write('{"stage": "synthesize", "st')
    seen = []
    real = runner._run_in

    def spy(*args, **kwargs):
        seen.append(curves.is_file())
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_in", spy)
    res = cli("run", str(tiny_recipe), "-o", str(out), *short)
    assert res.code == 0, res.err
    assert seen == [True] and curves.is_file() and (out / "metrics.json").is_file()

    # a finished run reused as it is gets the picture it lacks
    curves.unlink()
    res = cli("run", str(tiny_recipe), "-o", str(out), *short[:-1])
    assert res.code == 0 and "already finished" in res.err
    assert curves.is_file()
