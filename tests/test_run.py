"""`condensery run`: the run-directory contract, reuse of finished runs, quiet mode, hook events."""

from __future__ import annotations

import json
import math
import types

import pytest
import torch
import yaml
from condensery import SyntheticSet, hookimpl
from condensery._engine.plugins import build_registry
from PIL import Image

REPO_RECIPES = __import__("pathlib").Path(__file__).resolve().parents[1] / "recipes"


def test_run_directory_contract(cli, tiny_recipe, tmp_path):
    out = tmp_path / "run"
    res = cli("run", str(tiny_recipe), "-o", str(out), "--quiet")
    assert res.code == 0, res.err
    assert res.out == "" and res.err == ""
    assert {p.name for p in out.iterdir()} >= {"recipe.yaml", "synthetic.safetensors", "metrics.json", "grid.png"}

    resolved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert resolved["synthesizer"]["lr"] == 1.0 and resolved["synthesizer"]["matcher"]["name"] == "distribution"

    m = json.loads((out / "metrics.json").read_text())
    assert {"recipe", "method", "dataset", "ipc", "num_images", "results", "seconds"} <= set(m)
    assert (m["recipe"], m["method"], m["dataset"], m["ipc"], m["num_images"]) == ("tiny", "pixel", "digits", 1, 10)
    assert {"synthesize", "evaluate"} <= set(m["seconds"])
    sets = {r["set"]: r for r in m["results"]}
    assert set(sets) == {"synthetic", "random"}
    for r in m["results"]:
        assert r["evaluator"] == "hard-label" and r["model"] == "convnet" and r["runs"] == 2
        assert 0.0 <= r["mean"] <= 1.0 and r["std"] >= 0.0 and len(r["values"]) == 2

    s = SyntheticSet.load(out / "synthetic.safetensors")
    assert s.images.shape == (10, 1, 8, 8) and s.metadata["method"] == "pixel"
    assert s.metadata["task"]["dataset"] == "digits" and len(s.metadata["mean"]) == 1

    grid = Image.open(out / "grid.png")
    assert grid.height > grid.width  # 10 class rows, 1 image per row

    # the step log: every logged step of synthesis (pixel logs its first and last), one JSON line each
    steps = [json.loads(line) for line in (out / "logs" / "steps.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in steps] == [("synthesize", 0), ("synthesize", 19)]
    assert all(math.isfinite(r["loss"]) for r in steps)


def test_finished_run_is_reused_unless_forced(cli, tiny_recipe, tmp_path):
    out = tmp_path / "run"
    assert cli("run", str(tiny_recipe), "-o", str(out), "--quiet").code == 0
    stamp = (out / "metrics.json").stat().st_mtime_ns
    again = cli("run", str(tiny_recipe), "-o", str(out))
    assert again.code == 0 and "already finished" in again.err
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    forced = cli("run", str(tiny_recipe), "-o", str(out), "--force", "--quiet")
    assert forced.code == 0 and (out / "metrics.json").stat().st_mtime_ns != stamp
    # --force starts the step log over: the curves show this run, not both
    steps = [json.loads(line) for line in (out / "logs" / "steps.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in steps] == [("synthesize", 0), ("synthesize", 19)]


def test_a_torn_last_log_line_does_not_swallow_the_next_row(tmp_path):
    from types import SimpleNamespace

    from condensery import RunContext

    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "steps.jsonl").write_text('{"stage": "synthesize", "step": 0, "loss": 1.0}\n{"stage": "synth')
    ctx = RunContext.__new__(RunContext)  # only what log() touches
    ctx.run_dir, ctx.history, ctx._log_checked = tmp_path, [], False
    ctx._started, ctx._last_logged = __import__("time").monotonic(), {}
    ctx.runtime = SimpleNamespace(is_main=True)
    ctx.registry = SimpleNamespace(pm=SimpleNamespace(hook=SimpleNamespace(on_step=lambda **kw: None)))
    ctx.log("synthesize", 5, loss=0.5)
    ctx.log("synthesize", 6, loss=0.4)
    lines = (tmp_path / "logs" / "steps.jsonl").read_text().splitlines()
    first, second = json.loads(lines[-2]), json.loads(lines[-1])
    assert {k: first[k] for k in ("stage", "step", "loss")} == {"stage": "synthesize", "step": 5, "loss": 0.5}
    assert {k: second[k] for k in ("stage", "step", "loss")} == {"stage": "synthesize", "step": 6, "loss": 0.4}
    assert "step_s" not in first and second["step_s"] >= 0 and second["time_s"] >= first["time_s"]  # wall time per step
    assert lines[1] == '{"stage": "synth'  # the torn line stays (readers skip it); nothing else is lost


def test_same_seed_same_set(cli, tiny_recipe, tmp_path):
    for name in ("a", "b"):
        assert cli("run", str(tiny_recipe), "-o", str(tmp_path / name), "--quiet").code == 0
    a = SyntheticSet.load(tmp_path / "a" / "synthetic.safetensors")
    b = SyntheticSet.load(tmp_path / "b" / "synthetic.safetensors")
    assert (a.images == b.images).all()


def test_run_events_reach_plugins(tiny_recipe, tmp_path):
    from condensery._engine.recipe import load_recipe
    from condensery._engine.runner import run

    seen: list[str] = []
    mod = types.ModuleType("listener")
    mod.on_run_start = hookimpl(lambda context: seen.append("start"))
    mod.on_step = hookimpl(lambda context, stage, step, metrics: seen.append(f"step:{stage}"))
    mod.on_run_end = hookimpl(lambda context, metrics: seen.append(f"end:{len(metrics['results'])}"))
    registry = build_registry(extra_plugins=[("listener", mod)])
    run(load_recipe(tiny_recipe, [], registry), registry, tmp_path / "run")
    assert seen[0] == "start" and "step:synthesize" in seen and seen[-1] == "end:2"


def test_progress_is_quiet_when_not_a_terminal(cli, tiny_recipe, tmp_path):
    res = cli("run", str(tiny_recipe), "-o", str(tmp_path / "run"))
    assert res.code == 0
    assert "it/s" not in res.err and "%|" not in res.err  # no bars when stderr is not a TTY
    assert "[tiny] pixel on digits" in res.err  # status lines still appear


@pytest.mark.slow
def test_quickstart_beats_fair_random_subsets_by_10_points(cli, tmp_path):
    """The quickstart at a reduced budget (60 of 200 iterations, 150 of 300 epochs, 3 of 5
    networks): the whole 95 % interval of the paired difference lies above +10 points,
    against random subsets drawn afresh per network (measured: +13.7 [+12.3, +15.2]; the full
    recipe +16.6 [+14.4, +18.7], docs/results.md)."""
    res = cli("run", str(REPO_RECIPES / "quickstart.yaml"), "-o", str(tmp_path / "qs"), "--quiet",
              "--set", "synthesizer.iterations=60", "--set", "evaluators.0.epochs=150", "--set", "evaluators.0.runs=3")
    assert res.code == 0, res.err
    m = json.loads((tmp_path / "qs" / "metrics.json").read_text())
    [c] = m["comparisons"]
    assert c["paired"] and c["networks"] == 3
    assert c["ci95"][0] >= 0.10, c


def test_init_from_continues_a_finished_set_and_refuses_a_mismatched_one(cli, tiny_recipe, tmp_path):
    first = tmp_path / "first"
    assert cli("run", str(tiny_recipe), "-o", str(first), "--quiet").code == 0
    start = SyntheticSet.load(first / "synthetic.safetensors")
    init = f"synthesizer.init_from={first / 'synthetic.safetensors'}"

    same = tmp_path / "same"  # zero further iterations: the set comes back unchanged
    res = cli("run", str(tiny_recipe), "-o", str(same), "--quiet", "--set", init, "--set", "synthesizer.iterations=0")
    assert res.code == 0, res.err
    assert SyntheticSet.load(same / "synthetic.safetensors").images.equal(start.images)

    more = tmp_path / "more"  # further iterations move the images on from where they were
    res = cli("run", str(tiny_recipe), "-o", str(more), "--quiet", "--set", init, "--set", "synthesizer.iterations=5")
    assert res.code == 0, res.err
    moved = SyntheticSet.load(more / "synthetic.safetensors").images
    assert not moved.equal(start.images)
    fresh = tmp_path / "fresh"  # the same 5 iterations from the recipe's own initialisation
    assert cli("run", str(tiny_recipe), "-o", str(fresh), "--quiet", "--set", "synthesizer.iterations=5").code == 0
    assert not moved.equal(SyntheticSet.load(fresh / "synthetic.safetensors").images)

    wrong = cli("run", str(tiny_recipe), "-o", str(tmp_path / "wrong"), "--quiet", "--set", init, "--set", "synthesizer.ipc=2")
    assert wrong.code == 2
    assert "images per class" in wrong.err and "Traceback" not in wrong.err and len(wrong.err.strip().splitlines()) == 1


def test_pixel_init_random_subset_refines_exactly_the_random_baseline(cli, tiny_recipe, tmp_path):
    # paired comparison: the synthetic set starts from the very images the evaluators report as "random"
    from condensery import get_registry, open_task, random_subset_draw

    plan, ctx = open_task(tiny_recipe, get_registry(), needs_synthesizer=True, announce=False)
    draw, labels = random_subset_draw(ctx.data, 1, plan.seed)
    start = {}
    for init in ("random-subset", "real"):
        out = tmp_path / init
        res = cli("run", str(tiny_recipe), "-o", str(out), "--quiet",
                  "--set", f"synthesizer.init={init}", "--set", "synthesizer.iterations=0")
        assert res.code == 0, res.err
        start[init] = SyntheticSet.load(out / "synthetic.safetensors")
    assert torch.equal(start["random-subset"].images, draw) and torch.equal(start["random-subset"].labels, labels)
    assert not torch.equal(start["real"].images, draw)  # the default draws its own real images
