"""Least-squares (KRR) labels: the set's class per image, squared-error training on regression
targets, the random arm labelled by the same solver, and the evaluators that train on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import (
    Evaluator,
    Result,
    SyntheticSet,
    UserError,
    make_generator,
    offers,
    train_classifier,
)
from condensery.api.capabilities import LabelSolver
from condensery.evaluation import evaluate_next_to_random, label_like, random_like
from condensery_eval.protocol import TrainProtocol, subject_for_run
from condensery_eval.soft_label import SoftLabelOptions
from condensery_matching.krr import KRRMatcher, KRROptions

from .conftest import built, digits_recipe, task_context

RECIPE = digits_recipe('lstest', width=16, epochs=2, synthesizer='{name: random, ipc: 2}')
SOLVER = {"matcher": "krr", "options": {"num_models": 1, "width": 16, "batch_real": 8, "reg": 1e-6,
                                        "dsa": False, "resample_every": 1}}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "r.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def ctx(recipe):
    return task_context(recipe)


def template() -> SyntheticSet:
    """A set that says its labels were solved by ``SOLVER`` (images and labels do not matter)."""
    return SyntheticSet(torch.zeros(1, 1, 2, 2), torch.zeros(1, 10), metadata={"label_solver": SOLVER})


def direct_solve(ctx, subject: SyntheticSet, *stream) -> torch.Tensor:
    m = KRRMatcher(KRROptions(**SOLVER["options"]))
    m.prepare(ctx)
    return m.solve_labels(subject.images, subject.hard_labels, ctx.generator("label-solve", len(subject), *stream))


@pytest.fixture(scope="module")
def regression_set(ctx) -> SyntheticSet:
    s = label_like(ctx, template(), ctx.random_subset(2, stream="ls-synthetic"))
    s.metadata["role"] = "synthetic"
    return s


# -- the set ------------------------------------------------------------------------------------
def test_classes_round_trip_and_drive_hard_labels(tmp_path):
    labels = F.one_hot(torch.zeros(4, dtype=torch.long), 3).float() - 1 / 3  # argmax says: all class 0
    classes = torch.tensor([0, 1, 2, 2])
    s = SyntheticSet(torch.randn(4, 1, 2, 2), labels, metadata={"label_kind": "regression"}, classes=classes)
    assert torch.equal(s.hard_labels, classes) and s.label_kind == "regression"
    back = SyntheticSet.load(s.save(tmp_path / "s.safetensors"))
    assert torch.equal(back.classes, classes) and torch.equal(back.hard_labels, classes)
    assert torch.equal(back.labels, labels) and back.label_kind == "regression"
    assert torch.equal(s.to("cpu").classes, classes) and torch.equal(s.detach_cpu().classes, classes)
    assert SyntheticSet(s.images, labels).hard_labels.tolist() == [0, 0, 0, 0]  # without classes: argmax
    assert SyntheticSet(s.images, labels).label_kind == "soft"
    assert SyntheticSet(s.images, classes).label_kind == "hard"
    with pytest.raises(UserError, match="classes must be"):
        SyntheticSet(s.images, labels, classes=classes[:3])


def test_the_label_solver_is_protocol_metadata():
    s = SyntheticSet(torch.zeros(1, 1, 2, 2), torch.tensor([0]), metadata={"label_solver": SOLVER, "x": 1})
    assert s.protocol_metadata() == {"label_solver": SOLVER}


# -- training on regression targets -----------------------------------------------------------------
def test_mse_label_loss_fits_regression_targets_and_ce_does_not():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 2, 4, generator=g)
    y = torch.randn(6, 3, generator=g)
    y = y - y.mean(dim=1, keepdim=True)  # centred, with negative entries: not probabilities

    def fit(label_loss: str) -> float:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(8, 3))
        train_classifier(model, x, y, epochs=300, lr=0.1, generator=torch.Generator().manual_seed(1),
                         batch_size=6, weight_decay=0.0, lr_schedule="none", label_loss=label_loss)
        with torch.no_grad():
            return float(0.5 * ((model(x) - y) ** 2).sum(1).mean())

    start = float(0.5 * (y**2).sum(1).mean())
    assert fit("mse") < 0.05 * start  # 6 points, 9 parameters per output: fits them
    assert fit("auto") > 0.5 * start  # soft CE on the same targets goes elsewhere
    with pytest.raises(ValueError, match="regression targets"):
        train_classifier(nn.Linear(8, 3), x, y.argmax(1), epochs=1, lr=0.1, generator=g, label_loss="mse")


# -- the solver -------------------------------------------------------------------------------------
def test_krr_labeler_is_the_matchers_label_solve(ctx):
    from condensery_mgdd.tasks import KRRLabeler

    x = ctx.random_subset(1).images
    lab = KRRLabeler(ctx, 1, 16, 8, 1e-6)
    m = KRRMatcher(KRROptions(num_models=1, width=16, batch_real=8, reg=1e-6, dsa=False, resample_every=1))
    m.prepare(ctx)
    assert offers(m, LabelSolver)
    a = lab.labels(x, 0, make_generator(0, "t"))
    assert torch.equal(a, m.solve_labels(x, None, make_generator(0, "t")))
    assert lab.solver_record() == SOLVER


def test_label_like_solves_the_subjects_own_labels(ctx):
    rnd = ctx.random_subset(2)
    out = label_like(ctx, template(), rnd)
    assert out.label_kind == "regression" and out.labels.shape == (20, 10)
    assert torch.equal(out.classes, rnd.labels) and torch.equal(out.hard_labels, rnd.labels)
    assert not torch.equal(out.labels, F.one_hot(rnd.labels, 10).float())
    assert torch.allclose(out.labels.sum(1), torch.zeros(20), atol=1e-3)  # centred targets
    assert torch.allclose(out.labels, direct_solve(ctx, rnd))
    assert out.metadata["label_solver"] == SOLVER and torch.equal(out.images, rnd.images)
    # a template without a solver leaves the subject alone
    assert label_like(ctx, SyntheticSet(rnd.images, rnd.labels), rnd) is rnd
    bad = SyntheticSet(rnd.images, rnd.labels, metadata={"label_solver": {"matcher": "distribution"}})
    with pytest.raises(UserError, match=r"needs LabelSolver \(solve_labels\), which matcher 'distribution' does not offer"):
        label_like(ctx, bad, rnd)
    bad.metadata["label_solver"] = {"matcher": "krr", "options": {"no_such": 1}}
    with pytest.raises(UserError, match="label_solver matcher 'krr' has no option 'no_such'"):
        label_like(ctx, bad, rnd)


def test_mgdd_krr_set_records_its_classes_and_solver(ctx):
    from condensery_mgdd.generation import generate_set
    from condensery_mgdd.tasks import KRRLabeler

    lab = KRRLabeler(ctx, 1, 16, 8, 1e-6)
    s = generate_set(None, ctx, 2, 0, "krr", lab, refine=False)  # X0 itself, KRR-labelled
    assert s.label_kind == "regression" and s.metadata["label_solver"] == SOLVER
    assert torch.bincount(s.hard_labels, minlength=10).tolist() == [2] * 10
    m = KRRMatcher(KRROptions(**SOLVER["options"]))  # the recorded solver reproduces the set's labels
    m.prepare(ctx)
    assert torch.equal(s.labels, m.solve_labels(s.images, s.classes, make_generator(0, "mgdd-generate-labels", 2)))


# -- the random arm and the evaluators --------------------------------------------------------------
class _Spy(Evaluator):
    def __init__(self) -> None:
        super().__init__(TrainProtocol())
        self.seen: list[SyntheticSet] = []

    def evaluate(self, synset, ctx):
        self.seen.append(synset)
        return [Result.from_values("spy", "m", "", [0.5])]


def test_runner_gives_the_random_arm_its_own_solved_labels(ctx, regression_set):
    spy = _Spy()
    evaluate_next_to_random(ctx, [("spy", spy)], regression_set)
    syn, rnd = spy.seen
    assert torch.equal(syn.labels, regression_set.labels)  # the set's own labels are never re-solved
    assert rnd.metadata["role"] == "random" and rnd.label_kind == "regression"
    assert torch.allclose(rnd.labels, direct_solve(ctx, ctx.random_subset(2)))


def test_hard_label_evaluator_trains_on_stored_regression_labels(ctx, regression_set):
    rnd = random_like(ctx, regression_set)
    assert rnd.label_kind == "regression" and rnd.metadata["role"] == "random"
    assert torch.allclose(rnd.labels, direct_solve(ctx, ctx.random_subset(2)))
    per_run = TrainProtocol(runs=2, epochs=2, targets="stored", random_draws="per-run")
    draws = [subject_for_run(ctx, per_run, rnd, r) for r in range(2)]
    for r, d in enumerate(draws):  # each fresh draw gets its own solve
        assert d.label_kind == "regression" and not torch.equal(d.images, rnd.images)
        fresh = SyntheticSet(d.images, d.classes)
        assert torch.allclose(d.labels, direct_solve(ctx, fresh, "run", r))
    for subject in (regression_set, rnd):
        [res] = built("evaluator", "hard-label", per_run).evaluate(subject, ctx)
        assert (res.extra["targets"], res.extra["label_loss"]) == ("stored", "mse") and 0 <= res.mean <= 1
    [hard] = built("evaluator", "hard-label", TrainProtocol(runs=1, epochs=2)).evaluate(regression_set, ctx)
    assert (hard.extra["targets"], hard.extra["label_loss"]) == ("hard", "ce")
    plain = ctx.random_subset(2)
    plain.metadata["role"] = "synthetic"
    [res] = built("evaluator", "hard-label", TrainProtocol(runs=1, epochs=2, targets="stored")).evaluate(plain, ctx)
    assert res.extra["label_loss"] == "ce"  # a hard-labelled set trains as before


def test_soft_label_stored_regression_labels_train_with_mse(ctx, regression_set):
    opts = SoftLabelOptions(runs=1, epochs=2, targets="stored", mix="cutmix")
    [res] = built("evaluator", "soft-label", opts).evaluate(regression_set, ctx)
    assert (res.extra["targets"], res.extra["label_loss"]) == ("stored", "mse") and 0 <= res.mean <= 1
    probs = SyntheticSet(regression_set.images, F.softmax(regression_set.labels, 1), metadata={"role": "synthetic"})
    [res] = built("evaluator", "soft-label", opts).evaluate(probs, ctx)
    assert res.extra["label_loss"] == "kd"


def test_eval_of_a_regression_labelled_set_reports_integer_ipc(cli, ctx, recipe, tmp_path):
    rnd = ctx.random_subset(10, stream="ls-eval")
    skewed = F.one_hot(torch.zeros(100, dtype=torch.long), 10).float() - 0.1  # argmax: all class 0
    s = SyntheticSet(rnd.images, skewed, classes=rnd.labels,
                     metadata={"label_kind": "regression", "label_solver": SOLVER, "method": "krr-labelled",
                               "class_names": ctx.task.class_names, "mean": ctx.task.mean, "std": ctx.task.std})
    path = s.save(tmp_path / "set.safetensors")
    out = tmp_path / "out"
    r = cli("eval", str(path), "--recipe", str(recipe), "-o", str(out), "--quiet", "--set", "evaluators.0.targets=stored")
    assert r.code == 0, r.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["ipc"] == 10 and isinstance(m["ipc"], int)
    assert [(x["set"], x["label_loss"]) for x in m["results"]] == [("synthetic", "mse"), ("random", "mse")]


def test_rank_deficient_label_solve_stays_bounded():
    # more support images than feature dimensions (digits IPC 50: 250 images, 128 features) made
    # the pseudo-inverse invert round-off singular values into labels of 1e8
    from condensery_matching.krr import solve_krr_labels

    g = torch.Generator().manual_seed(0)
    fs, ft = torch.randn(40, 8, generator=g, dtype=torch.float64), torch.randn(60, 8, generator=g, dtype=torch.float64)
    yt = torch.nn.functional.one_hot(torch.randint(4, (60,), generator=g), 4).double() - 0.25
    labels = solve_krr_labels(fs, ft, yt, 1e-6)
    assert bool(torch.isfinite(labels).all()) and float(labels.abs().max()) < 10
