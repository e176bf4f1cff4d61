"""``condensery analyze``, the multi-index task and its ``mlp``, and the task-mismatch warning of eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from condensery import SyntheticSet
from condensery._engine.plugins import get_registry
from condensery._engine.recipe import load_recipe

TINY = """
name: tiny-analysis
seed: 0
data: {name: digits}
model: {name: convnet, depth: 2, width: 8}
synthesizer:
  name: pixel
  ipc: 2
  iterations: 5
  matcher: {name: distribution, batch_real: 8}
evaluators:
  - {name: hard-label, runs: 1, epochs: 4, augment: none}
runtime: {threads: 1}
"""

MULTI_INDEX = """
name: tiny-multi-index
seed: 0
data: {name: multi-index, d: 8, r: 2, n_train: 400, n_test: 200}
model: {name: mlp, width: 16}
synthesizer:
  name: pixel
  ipc: 3
  iterations: 5
  matcher: {name: distribution, batch_real: 16, dsa: false}
evaluators:
  - {name: hard-label, runs: 1, epochs: 5, augment: none, lr: 0.05}
runtime: {threads: 1}
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from condensery._engine.runner import run
    from condensery.api.progress import set_quiet

    root = tmp_path_factory.mktemp("analysis")
    (root / "tiny.yaml").write_text(TINY)
    registry = get_registry()
    set_quiet(True)
    try:
        run(load_recipe(root / "tiny.yaml", [], registry), registry, root / "run")
    finally:
        set_quiet(False)
    return root / "run"


def test_analysis_of_a_tiny_run_writes_every_section(cli, tiny_run, tmp_path):
    out = tmp_path / "analysis"
    r = cli("analyze", str(tiny_run), "-o", str(out), "--epochs", "3", "--runs", "1", "--long-factor", "2",
            "--mix", "4", "--real-epochs", "2", "--checkpoints", "4", "--max-images", "3", "--neighbors", "2", "--quiet")
    assert r.code == 0, r.err
    report = (out / "report.md").read_text()
    for heading in ("## Substitution outside the standard setting", "## Early-training dynamics",
                    "## Per-image information"):
        assert heading in report
    for fig in ("substitution.png", "dynamics.png", "per_image.png"):
        assert (out / fig).stat().st_size > 1000 and f"]({fig})" in report
    a = json.loads((out / "analysis.json").read_text())
    settings = [row["setting"] for row in a["substitution"]["rows"]]
    assert settings == ["standard protocol", "standard protocol, a fresh random draw per seed",
                        "mixed with 4 real / class", "long training (x2)"]
    assert a["substitution"]["rows"][3]["training"] == "6 epochs"  # 3 epochs x 2
    for row in a["substitution"]["rows"]:
        assert 0 <= row["set"]["mean"] <= 1 and row["images_compared"] == 20
    dyn = a["dynamics"]
    assert dyn["steps"][0] == 0 and dyn["steps"] == sorted(dyn["steps"]) and len(dyn["checkpoint_accuracy"]) == len(dyn["steps"])
    assert dyn["steps"][-1] == 2 * dyn["iterations_per_epoch"]  # the last iteration is a checkpoint
    for key in ("set", "random"):
        assert dyn[key]["best_epoch"] in dyn["epochs"] and len(dyn[key]["agreement"]) == len(dyn["steps"])
        assert dyn[key]["best_agreement"] == max(dyn[key]["agreement"])
    images = a["per-image"]["images"]
    # round-robin over classes: the first image of classes 0, 1, 2 (the set is class-ordered, ipc 2)
    assert [im["index"] for im in images] == [0, 2, 4] and [im["label"] for im in images] == [0, 1, 2]
    for im in images:
        assert len(im["neighbors"]) == 2 and -1 <= im["drop"] <= 1
        assert im["neighbor_similarity"] == sorted(im["neighbor_similarity"], reverse=True)


def test_leaving_out_is_paired_with_the_full_set_runs(tiny_run):
    """A left-out image changes the accuracy only through the data: same seeds as the full set."""
    from condensery_analysis.analyze import Analysis, AnalysisOptions, load_run, protocol_of

    plan, ctx, syn = load_run(tiny_run, get_registry(), [])
    opts = AnalysisOptions(epochs=2, runs=1)
    a = Analysis(ctx, syn, protocol_of(plan, syn, opts), opts)
    again, _ = a.trained_accs(syn.images, syn.labels, "set", lr=a.p.set_lr)
    assert again == a.base()["set"]  # deterministic per stream
    assert a.chosen_images()[:10] == list(range(0, 20, 2))


def test_the_standard_row_uses_the_runs_random_subset(tiny_run):
    """The report's random subset is the one the run's evaluators drew; fresh draws differ per seed."""
    from condensery_analysis.analyze import Analysis, AnalysisOptions, load_run, protocol_of

    plan, ctx, syn = load_run(tiny_run, get_registry(), [])
    opts = AnalysisOptions(epochs=2, runs=2)
    a = Analysis(ctx, syn, protocol_of(plan, syn, opts), opts)
    x, y = a.run_random_subset()
    evaluators_draw = ctx.random_subset(2)
    assert torch.equal(x, evaluators_draw.images) and torch.equal(y, evaluators_draw.labels)
    first, second = (a.real_subset(a.counts, ("draw", r))[1] for r in range(2))
    assert not torch.equal(first, second)
    assert torch.bincount(ctx.data.train_y[first], minlength=10).tolist() == [2] * 10


def test_analyze_errors_are_one_line(cli, tiny_run, tmp_path):
    r = cli("analyze", str(tmp_path))
    assert r.code == 2 and "has no recipe.yaml" in r.err and r.err.count("\n") == 1
    r = cli("analyze", str(tiny_run), "--only", "dynamic", "-o", str(tmp_path / "x"))
    assert r.code == 2 and "unknown analysis section 'dynamic'" in r.err


# -- the multi-index task -------------------------------------------------------------------
def _source(**opts):
    from condensery_analysis.multi_index import MultiIndex, MultiIndexOptions

    return MultiIndex(MultiIndexOptions(**opts))


@pytest.mark.parametrize("link,r", [("norm", 2), ("argmax", 3), ("sign-product", 2)])
def test_multi_index_labels_depend_only_on_the_projection(link, r):
    src = _source(d=12, r=r, link=link, n_train=600, n_test=100)
    raw = src.load()
    assert raw.train_images.shape == (600, 12, 1, 1) and raw.test_images.shape == (100, 12, 1, 1)
    x = raw.train_images.reshape(600, 12)
    assert torch.equal(src.label(x), raw.train_labels)
    w = src.projection()
    assert torch.allclose(w.T @ w, torch.eye(r), atol=1e-5)
    noise = torch.randn(600, 12, generator=torch.Generator().manual_seed(1)) * 3
    orthogonal = noise - (noise @ w) @ w.T  # moves x only outside the span of W
    assert torch.equal(src.label(x + orthogonal), raw.train_labels)
    inside = (noise @ w) @ w.T  # moves x inside the span: labels must change somewhere
    assert (src.label(x + inside) != raw.train_labels).float().mean() > 0.2
    counts = torch.bincount(raw.train_labels, minlength=src.num_classes)
    assert counts.min() > 0.6 * 600 / src.num_classes  # (near) balanced classes


def test_multi_index_task_is_fixed_by_its_seed_and_checked():
    from condensery import UserError

    a, b, c = _source(d=6, r=2), _source(d=6, r=2), _source(d=6, r=2, task_seed=1)
    assert torch.equal(a.projection(), b.projection()) and not torch.equal(a.projection(), c.projection())
    assert _source(d=6, r=2, num_classes=4).num_classes == 4
    with pytest.raises(UserError, match="r <= d"):
        _source(d=2, r=3)
    with pytest.raises(UserError, match="argmax link needs r >= 2"):
        _source(d=4, r=1, link="argmax")


def test_multi_index_run_with_the_mlp(cli, tmp_path):
    (tmp_path / "mi.yaml").write_text(MULTI_INDEX)
    r = cli("run", str(tmp_path / "mi.yaml"), "-o", str(tmp_path / "run"), "--quiet")
    assert r.code == 0, r.err
    s = SyntheticSet.load(tmp_path / "run" / "synthetic.safetensors")
    assert s.images.shape == (6, 8, 1, 1)
    assert s.metadata["task"]["data"]["d"] == 8 and s.metadata["task"]["model"] == {"name": "mlp", "width": 16}
    assert (tmp_path / "run" / "grid.png").is_file()
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [x["model"] for x in m["results"]] == ["mlp", "mlp"]


def test_mlp_is_two_layers_with_a_feature_split():
    from condensery.models import embed
    from condensery_analysis.mlp import mlp_factory

    net = mlp_factory(num_classes=3, in_chans=5, img_size=1, width=7)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 7), (7, 3)]
    x = torch.randn(4, 5, 1, 1)
    assert net(x).shape == (4, 3) and embed(net, x).shape == (4, 7)
    assert mlp_factory(num_classes=10, in_chans=1, img_size=8)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


# -- task-specific distillation -----------------------------------------------------------------
def test_eval_warns_when_the_task_differs(cli, tiny_run, tmp_path):
    s = SyntheticSet.load(tiny_run / "synthetic.safetensors")
    task = s.metadata["task"]
    assert task["data"]["name"] == "digits" and task["data"]["classes"] is None
    assert task["model"]["width"] == 8 and task["protocol"][0]["epochs"] == 4 and "metric" in task

    same = cli("eval", str(tiny_run / "synthetic.safetensors"), "--recipe", str(tiny_run / "recipe.yaml"),
               "-o", str(tmp_path / "same"), "--quiet", "--set", "evaluators.0.runs=1")
    assert same.code == 0, same.err
    assert "warning" not in same.err  # its own task (the number of runs is not part of it)

    other = cli("eval", str(tiny_run / "synthetic.safetensors"), "--recipe", str(tiny_run / "recipe.yaml"),
                "-o", str(tmp_path / "other"), "--quiet", "--set", "model.width=16", "--set", "evaluators.0.epochs=3")
    assert other.code == 0, other.err
    lines = [x for x in other.err.splitlines() if x.startswith("warning:")]
    assert len(lines) == 1
    assert "model.width 8 -> 16" in lines[0] and "evaluators[0].epochs 4 -> 3" in lines[0]
    m = json.loads((tmp_path / "other" / "metrics.json").read_text())
    assert m["task_mismatch"] == ["model.width 8 -> 16", "evaluators[0].epochs 4 -> 3"]


def test_task_differences_names_dataset_options():
    from condensery_eval.evaluate import task_differences

    base = {"dataset": "cifar10", "data": {"name": "imagefolder", "classes": [0, 1]}, "model": {"name": "convnet"},
            "protocol": [{"name": "hard-label", "epochs": 300, "runs": 5}], "metric": "acc"}
    assert task_differences(base, json.loads(json.dumps(base))) == []
    assert task_differences(None, base) == []  # sets from before the task was recorded
    other = json.loads(json.dumps(base))
    other["data"]["classes"] = None
    other["protocol"][0]["runs"] = 1
    other["protocol"][0]["random_draws"] = "per-run"  # how the baseline is drawn is not the set's task
    other["protocol"].append({"name": "cross-arch"})
    assert task_differences(base, other) == ["data.classes [0, 1] -> None", "evaluators [hard-label] -> [hard-label, cross-arch]"]
