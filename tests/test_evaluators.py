"""Evaluators of the eval plugin on the digits data: ranking formulas, soft labels, cross-arch,
runs spread over processes. Tiny epochs; every assertion fails if the behaviour breaks."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from condensery import UserError
from condensery.evaluation import random_like
from condensery.training import predict
from condensery_eval.cross_arch import CrossArchOptions
from condensery_eval.hard_label import HardLabelEvaluator
from condensery_eval.models import small_vgg_factory
from condensery_eval.protocol import TrainProtocol, train_once
from condensery_eval.ranking import (
    RankingEvaluator,
    RankingOptions,
    augmentation_robust_score,
    label_robust_score,
    normalise,
)
from condensery_eval.soft_label import SoftLabelOptions

from .conftest import built, digits_recipe, task_context

RECIPE = digits_recipe('evtest', width=16, epochs=5, synthesizer='{name: random, ipc: 2}')


@pytest.fixture(scope="module")
def ctx():
    return task_context(RECIPE)


@pytest.fixture(scope="module")
def synset(ctx):
    s = ctx.random_subset(2, stream="test-synthetic")
    s.metadata["role"] = "synthetic"
    return s


# -- ranking formulas -----------------------------------------------------------------------
def test_normalisation_maps_minus_one_zero_one():
    assert normalise(-1.0) == pytest.approx(0.0, abs=1e-12)
    assert normalise(1.0) == pytest.approx(1.0)
    # (e^0 - e^-1) / (e - e^-1) = 0.632121 / 2.350402
    assert normalise(0.0) == pytest.approx(0.268941, abs=1e-6)


def test_lrs_hand_computed():
    # HLR 0.3, IOR 0.2, w 0.5: α = 0.1 - 0.15 = -0.05; (0.951229 - 0.367879) / 2.350402
    assert label_robust_score(hlr=0.3, ior=0.2) == pytest.approx(0.248192, abs=1e-6)
    # w 0.7: α = 0.14 - 0.09 = 0.05; (1.051271 - 0.367879) / 2.350402
    assert label_robust_score(hlr=0.3, ior=0.2, w=0.7) == pytest.approx(0.290755, abs=1e-6)
    # a set as good as the full data that beats random by 100 points: the top score
    assert label_robust_score(hlr=-1.0, ior=1.0) == pytest.approx(1.0)


def test_ars_hand_computed():
    # β = 0.5·(0.6 - 0.5) + 0.5·(0.4 - 0.45) = 0.025; (1.025315 - 0.367879) / 2.350402
    assert augmentation_robust_score(0.6, 0.5, 0.4, 0.45) == pytest.approx(0.279712, abs=1e-6)
    # γ = 1 uses only the augmented arm: β = 0.1
    assert augmentation_robust_score(0.6, 0.5, 0.4, 0.45, gamma=1.0) == pytest.approx(
        (math.exp(0.1) - math.exp(-1)) / (math.e - math.exp(-1)))


def test_ranking_runs_its_own_random_subset_and_caches_full_accuracy(ctx, synset):
    assert RankingEvaluator.compares_random is False
    opts = RankingOptions(protocol="hard-label", hard={"runs": 1, "epochs": 3}, full_epochs=1)
    results = built("evaluator", "ranking", opts).evaluate(synset, ctx)
    by = {(r.extra["arm"], r.set): r for r in results}
    assert set(by) == {("method", "synthetic"), ("method", "random"), ("noaug", "synthetic"),
                       ("noaug", "random"), ("full", "full")}
    head = by["method", "synthetic"]
    hlr = by["full", "full"].mean - head.mean  # hard-label protocol: the method arm is the hard arm
    ior = head.mean - by["method", "random"].mean
    assert head.extra["hlr"] == pytest.approx(hlr)
    assert head.extra["ior"] == pytest.approx(ior)
    assert head.extra["lrs"] == pytest.approx(label_robust_score(hlr, ior))
    assert head.extra["ars"] == pytest.approx(augmentation_robust_score(
        head.mean, by["method", "random"].mean, by["noaug", "synthetic"].mean, by["noaug", "random"].mean))
    assert by["noaug", "synthetic"].extra["augment"] == "none"
    files = list((Path(os.environ["CONDENSERY_CACHE"]) / "full-accuracy").glob("digits-convnet-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["values"] == by["full", "full"].values
    assert by["full", "full"].extra["source"] == "computed"
    again = built("evaluator", "ranking", opts).full_accuracy(ctx)
    assert again == (by["full", "full"].values, "cache")


def test_ranking_auto_protocol_follows_soft_labels(synset):
    ev = built("evaluator", "ranking", RankingOptions())
    soft = type(synset)(synset.images, torch.nn.functional.one_hot(synset.labels, 10).float())
    assert ev.method_protocol(synset) == "hard-label"
    assert ev.method_protocol(soft) == "soft-label"


# -- soft labels ----------------------------------------------------------------------------
def test_soft_label_student_matches_its_teacher_better_than_hard_labels(ctx, synset):
    opts = SoftLabelOptions(runs=2, epochs=60, lr=0.01, augment="none", mix="mixup",
                            teacher={"epochs": 20, "augment": "none"})
    ev = built("evaluator", "soft-label", opts)
    [res] = ev.evaluate(synset, ctx)
    assert res.evaluator == "soft-label" and res.runs == 2 and res.extra["optimizer"] == "adamw"
    assert res.extra["teacher_test"] > 0.8  # a teacher worth distilling from
    teacher_pred = predict(ev.teacher(ctx), ctx.data.test_x)
    hard = TrainProtocol(epochs=60, augment="none")
    hard_agree = [
        float((predict(train_once(ctx, hard, synset, 0.01, ("agree", r), synset.labels), ctx.data.test_x)
               == teacher_pred).float().mean())
        for r in range(2)
    ]
    assert res.extra["teacher_agreement"] > sum(hard_agree) / 2 + 0.05
    # the teacher was cached as safetensors and loads back as the very same network
    cached = list((Path(os.environ["CONDENSERY_CACHE"]) / "teachers").glob("digits-convnet-*.safetensors"))
    assert len(cached) == 1
    loaded = built("evaluator", "soft-label", SoftLabelOptions(teacher={"path": str(cached[0])})).teacher(ctx)
    assert torch.equal(predict(loaded, ctx.data.test_x), teacher_pred)


def test_soft_label_stored_targets_and_random_subset(ctx, synset):
    opts = SoftLabelOptions(runs=1, epochs=3, targets="stored", mix="cutmix")
    rnd = random_like(ctx, synset)
    assert rnd.metadata["role"] == "random" and len(rnd) == len(synset)
    [res] = built("evaluator", "soft-label", opts).evaluate(rnd, ctx)
    assert res.set == "random" and "teacher_agreement" not in res.extra and 0 <= res.mean <= 1


def test_teacher_path_errors_are_one_line(ctx, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        built("evaluator", "soft-label", SoftLabelOptions(teacher={"path": str(tmp_path / "none.safetensors")})).teacher(ctx)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="not a readable"):
        built("evaluator", "soft-label", SoftLabelOptions(teacher={"path": str(bad)})).teacher(ctx)


def test_soft_label_uses_the_teacher_recorded_in_the_set(ctx, synset, tmp_path):
    """A DWA/SRe2L set names its teacher (path + model spec); no teacher.path is needed."""
    from dataclasses import replace

    from safetensors.torch import save_file

    torch.manual_seed(3)
    own = ctx.create_model("convnet", depth=2, width=8)  # differs from the task model (width 16)
    path = tmp_path / "teacher.safetensors"
    save_file({k: v.contiguous() for k, v in own.state_dict().items()}, str(path))
    labelled = replace(synset, metadata={**synset.metadata,
                                         "teacher": {"path": str(path), "model": {"name": "convnet", "depth": 2, "width": 8}}})
    ev = built("evaluator", "soft-label", SoftLabelOptions(runs=1, epochs=2, augment="none"))
    [res] = ev.evaluate(labelled, ctx)
    assert res.extra["teacher_source"] == "set metadata" and res.extra["teacher_path"] == str(path)
    assert torch.equal(predict(ev.teacher(ctx, labelled), ctx.data.test_x), predict(own.eval(), ctx.data.test_x))
    gone = replace(labelled, metadata={**labelled.metadata, "teacher": {"path": str(tmp_path / "moved.safetensors")}})
    with pytest.raises(UserError, match="teacher.path"):
        built("evaluator", "soft-label", SoftLabelOptions(runs=1, epochs=1)).evaluate(gone, ctx)


# -- cross-architecture -----------------------------------------------------------------------
def test_cross_arch_reports_every_model(ctx, synset):
    opts = CrossArchOptions(models=["convnet", "vgg11_dd"], protocol={"name": "hard-label", "runs": 1, "epochs": 1})
    results = built("evaluator", "cross-arch", opts).evaluate(synset, ctx)
    assert [(r.evaluator, r.model, r.set) for r in results] == [
        ("cross-arch", "convnet", "synthetic"), ("cross-arch", "vgg11_dd", "synthetic")]
    assert all(r.extra["protocol"] == "hard-label" for r in results)


@pytest.mark.parametrize("spec, message", [
    ({"models": ["not-a-net"]}, "unknown model 'not-a-net'"),
    ({"protocol": {"name": "hard-label", "model": "convnet"}}, "must not set 'model'"),
    ({"protocol": {"name": "nope"}}, "not one of"),
    ({"protocol": {"name": "soft-label", "temprature": 3}}, "temprature"),
])
def test_cross_arch_options_fail_early(spec, message):
    from condensery.api.options import validate_options

    with pytest.raises(UserError, match=message):
        validate_options(CrossArchOptions, spec, "evaluators[0] 'cross-arch'")


@pytest.mark.parametrize("chans, size", [(1, 8), (3, 32)])
def test_vgg11_dd_works_on_small_images(chans, size):
    model = small_vgg_factory("vgg11")(num_classes=10, in_chans=chans, img_size=size)
    assert model(torch.randn(2, chans, size, size)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) < 10_000_000  # no 4096-wide 7x7 head


# -- processes ------------------------------------------------------------------------------
class _Runtime:
    """The real runtime, seen as process ``index`` of ``procs``; ``gather`` records what it got."""

    def __init__(self, real, procs: int, index: int, gathered: list) -> None:
        self._real, self.num_processes, self.process_index, self.gathered = real, procs, index, gathered

    def split(self, items, label: str = "work") -> list:
        from condensery.api.runtime import share_of

        return share_of(list(items), self.num_processes, self.process_index)

    def gather(self, objects) -> list:
        self.gathered.extend(objects)
        return list(objects)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_runs_split_over_processes_give_the_same_accuracies(ctx, synset):
    ev = built("evaluator", "hard-label", TrainProtocol(runs=4, epochs=2))
    single = ev.evaluate(synset, ctx)[0].values
    real = ctx.runtime
    gathered: list = []
    try:
        parts = []
        for index in (0, 1):
            ctx.runtime = _Runtime(real, 2, index, gathered)
            parts.append(ev.evaluate(synset, ctx)[0].values)
    finally:
        ctx.runtime = real
    # each process trains its contiguous share of the runs, with the very seeds of a 1-process run
    assert parts[0] == single[:2] and parts[1] == single[2:]
    assert sorted(out[0] for out in gathered) == sorted(single)


# -- hard-label protocol choices --------------------------------------------------------------
@pytest.mark.parametrize("augment", ["dsa", "crop-flip", "flip", "none"])
def test_hard_label_augmentations(ctx, synset, augment):
    [res] = built("evaluator", "hard-label", TrainProtocol(runs=1, epochs=2, augment=augment)).evaluate(synset, ctx)
    assert res.extra["augment"] == augment and 0 <= res.mean <= 1 and res.set == "synthetic"


def test_hard_label_uses_learned_lr_else_validation_choice(ctx, synset):
    learned = type(synset)(synset.images, synset.labels, lr=0.0123, metadata={"role": "synthetic"})
    [res] = built("evaluator", "hard-label", TrainProtocol(runs=1, epochs=1)).evaluate(learned, ctx)
    assert (res.extra["lr"], res.extra["lr_source"]) == (0.0123, "learned")
    opts = TrainProtocol(runs=1, epochs=2, use_learned_lr=False, lr_grid=[1e-4, 0.05])
    [res] = built("evaluator", "hard-label", opts).evaluate(learned, ctx)
    scores = res.extra["val_accuracy_by_lr"]
    assert res.extra["lr_source"] == "validation" and res.extra["lr"] == max(scores, key=scores.get)
    # a candidate that diverges is skipped and recorded, not a failed evaluation
    from condensery import DivergenceError
    from condensery_eval.protocol import choose_lr, train_once

    def train(lr, stream):
        if lr > 1:
            raise DivergenceError("training loss became nan at epoch 3; lower the lr")
        return train_once(ctx, opts, learned, lr, stream, learned.labels)

    wild = TrainProtocol(runs=1, epochs=2, use_learned_lr=False, lr_grid=[0.05, 10.0])
    lr, info = choose_lr(ctx, wild, learned, learned.labels, "t", train)
    assert lr == 0.05 and info["lr_diverged"] == [10.0] and list(info["val_accuracy_by_lr"]) == [0.05]
    with pytest.raises(DivergenceError, match="every lr"):
        choose_lr(ctx, wild.model_copy(update={"lr_grid": [10.0]}), learned, learned.labels, "t", train)


# -- the random baseline over draws -------------------------------------------------------------
def test_random_baseline_draws_afresh_per_run_by_default(ctx, synset):
    """By default each random-arm network trains on its own balanced draw (recorded); ``one`` on the same."""
    from condensery_eval.protocol import subject_for_run

    rnd = random_like(ctx, synset)
    per_run = TrainProtocol(runs=2, epochs=2)
    assert per_run.random_draws == "per-run"
    draws = [subject_for_run(ctx, per_run, rnd, r) for r in range(2)]
    assert not torch.equal(draws[0].images, draws[1].images)
    assert torch.equal(draws[0].images, subject_for_run(ctx, per_run, rnd, 0).images)  # seeded
    for d in draws:
        assert torch.bincount(d.hard_labels, minlength=10).tolist() == [2] * 10
        assert d.metadata["role"] == "random"
    assert subject_for_run(ctx, TrainProtocol(random_draws="one"), rnd, 1) is rnd
    assert subject_for_run(ctx, per_run, synset, 1) is synset  # the distilled set is never redrawn

    [one] = built("evaluator", "hard-label", TrainProtocol(runs=2, epochs=2, random_draws="one")).evaluate(rnd, ctx)
    [fresh] = built("evaluator", "hard-label", per_run).evaluate(rnd, ctx)
    assert (one.extra["random_draws"], fresh.extra["random_draws"]) == ("one", "per-run")
    assert one.values != fresh.values  # run 1 (at least) trained on other images
    # metrics.json says which training images each network of the random arm saw
    assert "drawn_indices" not in one.extra and len(fresh.extra["drawn_indices"]) == 2
    for r, idx in enumerate(fresh.extra["drawn_indices"]):
        assert torch.equal(ctx.data.train_x[torch.tensor(idx)], draws[r].images)
        assert torch.bincount(ctx.data.train_y[torch.tensor(idx)], minlength=10).tolist() == [2] * 10
    soft = SoftLabelOptions(runs=2, epochs=2, targets="stored", random_draws="per-run")
    [res] = built("evaluator", "soft-label", soft).evaluate(rnd, ctx)
    assert res.extra["random_draws"] == "per-run" and len(res.values) == 2


def test_an_evaluator_reports_the_name_it_was_registered_under(ctx, synset):
    """The same class registered twice: each built component reports its own registration's name."""
    import types

    from condensery import hookimpl
    from condensery._engine.plugins import build_registry

    def register_evaluators(register):
        register("hard-label-again", "condensery_eval.hard_label:HardLabelEvaluator",
                 options="condensery_eval.options:TrainProtocol")

    plugin = types.ModuleType("again")
    plugin.register_evaluators = hookimpl(register_evaluators)
    registry = build_registry(extra_plugins=[("again", plugin)])
    opts = TrainProtocol(runs=1, epochs=1, augment="none")
    again, original = (registry.get("evaluator", n).build(opts) for n in ("hard-label-again", "hard-label"))
    assert type(again) is type(original) and (again.name, original.name) == ("hard-label-again", "hard-label")
    [res] = again.evaluate(synset, ctx)
    assert res.evaluator == "hard-label-again"
    with pytest.raises(AttributeError, match="HardLabelEvaluator was built by hand, so it has no registered name"):
        _ = HardLabelEvaluator(opts).name
