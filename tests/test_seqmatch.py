"""SeqMatch: subset sizes, frozen subsets, warm-started experts, stage-aware resume,
the sequential evaluation protocol, and a tiny end-to-end run on digits."""

from __future__ import annotations

import json

import pytest
import torch
from condensery import RunContext, SyntheticSet, UserError, make_generator
from condensery._engine.plugins import get_registry
from condensery.api.context import Task
from condensery.api.data import RealData
from condensery.api.options import validate_options
from condensery.api.runtime import Runtime, RuntimeOptions
from condensery.data.digits import Digits
from condensery.data.options import DigitsOptions
from condensery.data.realdata import load_raw
from condensery_eval import protocol as protocol_module
from condensery_eval.protocol import TrainProtocol, split_epochs, stage_plan, train_once
from condensery_matching.experts import read_epochs, read_header
from condensery_matching.gradient import GradientMatcher, GradientOptions
from condensery_matching.trajectory import TrajectoryMatcher, TrajectoryOptions
from condensery_seqmatch import synthesizer as seq_module
from condensery_seqmatch.options import split_ipc
from condensery_seqmatch.stages import stage_layout, warm_train
from condensery_seqmatch.synthesizer import SeqMatchOptions, SeqMatchSynthesizer

from .conftest import Stop, built, stop_at

TINY = {"name": "convnet", "depth": 1, "width": 8, "norm": "instancenorm"}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_ctx(tmp_path, ipc: int, matcher=None, checkpoint_every: int = 200) -> RunContext:
    """Digits (20 training images per class), a tiny ConvNet, the matcher prepared."""
    src = Digits(DigitsOptions(cache=False))
    data = RealData.from_raw("digits", load_raw("digits", src), 0.1, True)
    idx = torch.cat([data.class_indices[c][:20] for c in range(data.num_classes)])
    data = RealData("digits", data.train_x[idx], data.train_y[idx], data.val_x, data.val_y,
                    data.test_x, data.test_y, data.class_names, data.mean, data.std)
    runtime = Runtime(RuntimeOptions(cpu=True, checkpoint_every=checkpoint_every), seed=0)
    task = Task("digits", data.num_classes, data.class_names, data.image_shape, data.mean, data.std, dict(TINY))
    ctx = RunContext(task, data, runtime, get_registry(), tmp_path, {"synthesizer": {"ipc": ipc}}, matcher)
    if matcher is not None:
        matcher.prepare(ctx)
    return ctx


def seq(ipc: int = 4, **kw) -> SeqMatchSynthesizer:
    base = dict(ipc=ipc, k=2, iterations=4, lr=0.05, optimizer="adam", warm_epochs=1, stage_experts=2)
    base.update(kw)
    return SeqMatchSynthesizer(SeqMatchOptions(**base))


def trajectory(tmp_path) -> TrajectoryMatcher:
    return TrajectoryMatcher(TrajectoryOptions(
        syn_steps=2, expert_epochs=1, max_start_epoch=1, train_epochs=2, num_experts=2, expert_batch=64,
        experts_dir=str(tmp_path.parent / "experts"), lr_init=0.01, lr_lr=1e-3))


# -- subsets -------------------------------------------------------------------------------
def test_per_class_counts_add_up_to_the_ipc():
    assert SeqMatchOptions(ipc=50, k=3).sizes() == [17, 17, 16]
    assert SeqMatchOptions(ipc=50, subsets=[17, 17, 16]).sizes() == [17, 17, 16]
    assert SeqMatchOptions(ipc=10).sizes() == [5, 5]  # default K = 2
    assert SeqMatchOptions(ipc=1).sizes() == [1]  # IPC 1 is the base matcher
    assert SeqMatchOptions(ipc=10, k=3, iterations=10).iterations_per_stage() == [4, 3, 3]
    assert split_ipc(7, 7) == [1] * 7
    for bad in ({"ipc": 10, "subsets": [5, 4]}, {"ipc": 10, "subsets": [10, 0]}, {"ipc": 3, "k": 4},
                {"ipc": 4, "k": 2, "iterations": 10, "stage_iterations": [5, 4]}):
        with pytest.raises(UserError, match="synthesizer 'seqmatch'"):
            validate_options(SeqMatchOptions, bad, "synthesizer 'seqmatch'")
    order, stages = stage_layout([2, 1], 3)  # ipc 3, three classes, class-ordered rows 0..8
    assert order.tolist() == [0, 1, 3, 4, 6, 7, 2, 5, 8]
    assert stages.tolist() == [0] * 6 + [1] * 3


def test_unsupported_matcher_is_a_one_line_error(tmp_path):
    from condensery_matching.distribution import DistributionMatcher, DistributionOptions

    ctx = make_ctx(tmp_path, 2, DistributionMatcher(DistributionOptions(batch_real=8)))
    with pytest.raises(UserError, match=r"must offer ExpertMatching \(.*\) or WarmStartable \(set_warm_start\); "
                                        "DistributionMatcher offers neither; use .*trajectory or gradient"):
        seq(ipc=2).synthesize(ctx)


# -- frozen subsets, warm starts ----------------------------------------------------------
def test_frozen_subsets_do_not_change_during_later_stages(tmp_path, monkeypatch):
    matcher = GradientMatcher(GradientOptions(dsa=False, batch_real=8, outer_loop=1, inner_loop=1))
    ctx = make_ctx(tmp_path, 4, matcher)
    seen, warmed = [], []
    loss = matcher.loss

    def spy(images, labels, step):
        seen.append((step, images.detach().clone(), labels.clone()))
        return loss(images, labels, step)

    def warm_spy(ctx_, model, images, labels, stages, lrs, *args, **kw):
        warmed.append((images.clone(), lrs))
        return warm_train(ctx_, model, images, labels, stages, lrs, *args, **kw)

    monkeypatch.setattr(matcher, "loss", spy)
    monkeypatch.setattr(seq_module, "warm_train", warm_spy)
    out = seq(iterations=6).synthesize(ctx)

    k = ctx.task.num_classes
    assert len(out) == 4 * k
    assert torch.bincount(out.labels, minlength=k).tolist() == [4] * k
    for s in (0, 1):
        assert torch.bincount(out.labels[out.stages == s], minlength=k).tolist() == [2] * k
    s1 = out.images[out.stages == 0]
    first = [img for step, img, _ in seen if step < 3]
    later = [img for step, img, _ in seen if step >= 3]
    assert len(first) == len(later) == 3
    assert all(img.shape[0] == 2 * k for img in first)  # stage 1 sees S_1 only
    assert not torch.equal(first[0], s1)  # S_1 really was optimised in stage 1 ...
    for img in later:  # ... and then frozen: stage 2 sees exactly the final S_1 first
        assert img.shape[0] == 4 * k and torch.equal(img[: 2 * k], s1)
    # the stage-2 networks were warm-started on S_1 (one per outer iteration), never in stage 1
    assert len(warmed) == 3 and all(torch.equal(w[0], s1) and w[1] == [0.01] for w in warmed)
    assert out.stage_lrs is None and out.lr is None  # gradient matching learns no lr


def test_stage_experts_start_from_a_network_trained_on_the_frozen_subsets(tmp_path):
    ctx = make_ctx(tmp_path / "run", 2, trajectory(tmp_path / "run"))
    out = seq(ipc=2, iterations=4, warm_epochs=2).synthesize(ctx)
    assert out.stage_lrs is not None and len(out.stage_lrs) == 2 and out.lr == out.stage_lrs[-1]
    assert all(v > 0 for v in out.stage_lrs)
    [folder] = (ctx.run_dir / "checkpoints" / "seqmatch-experts").iterdir()
    assert folder.name.startswith("stage2-")
    shard = folder / "expert_0000.safetensors"
    header = read_header(shard)
    assert header["data"]["seqmatch"]["stage"] == 2 and header["epochs"] == 2
    assert ctx.matcher.experts[0] == shard  # stage 2 matched these trajectories

    # epoch 0 of stage-2 expert 0 is a fresh network trained on S_1 with α_1, 2 epochs
    gen = make_generator(0, "seqmatch-expert", 1, 0)
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
    model = ctx.create_model()
    fresh = torch.cat([p.detach().flatten() for p in model.parameters()])
    s1 = out.stages == 0
    warm_train(ctx, model, out.images[s1], out.labels[s1], out.stages[s1], [out.stage_lrs[0]], 2, gen,
               0.9, 5e-4, True)
    warmed = torch.cat([p.detach().flatten() for p in model.parameters()])
    [epoch0] = read_epochs(shard, [0])
    assert torch.allclose(epoch0, warmed) and not torch.allclose(epoch0, fresh)


# -- resume -----------------------------------------------------------------------------


def test_a_stopped_run_resumes_at_its_stage_and_step(tmp_path, monkeypatch):
    clean = seq(ipc=2, iterations=6).synthesize(make_ctx(tmp_path / "clean", 2, trajectory(tmp_path / "clean")))

    matcher = trajectory(tmp_path / "killed")
    ctx = make_ctx(tmp_path / "killed", 2, matcher, checkpoint_every=1)
    stop_at(monkeypatch, matcher, 4)
    with pytest.raises(Stop):
        seq(ipc=2, iterations=6).synthesize(ctx)
    tensors, meta = ctx.checkpoints.load("seqmatch")
    assert (meta["stage"], meta["step"]) == (1, 1)  # stage 2 (0-based 1), its step 1 = global step 4

    again = make_ctx(tmp_path / "killed", 2, trajectory(tmp_path / "killed"), checkpoint_every=1)
    resumed = seq(ipc=2, iterations=6).synthesize(again)
    assert [r for r in again.history if r.get("resumed")] == [
        {"stage": "synthesize", "step": 4, "resumed": 1.0, "subset": 2.0}]
    assert torch.equal(resumed.images, clean.images)  # bit-identical to the uninterrupted run
    assert resumed.stage_lrs == clean.stage_lrs


# -- sequential evaluation ---------------------------------------------------------------
def staged_set(ctx) -> SyntheticSet:
    x, y = ctx.data.balanced_batch(3, make_generator(0, "staged"))  # 3 per class, class-ordered
    stages = torch.tensor([0, 1, 2] * ctx.task.num_classes)
    return SyntheticSet(x, y, lr=0.03, stages=stages, stage_lrs=[0.01, 0.02, 0.03])


def test_sequential_evaluation_trains_s1_then_the_unions_with_their_lrs(tmp_path, monkeypatch):
    ctx = make_ctx(tmp_path, 3)
    synset = staged_set(ctx)
    assert split_epochs(10, 3) == [4, 3, 3] and split_epochs(2, 3) == [1, 1, 1]
    calls = []
    real = protocol_module.train_classifier

    def record(model, images, labels, **kw):
        calls.append((id(model), images.shape[0], kw["lr"], kw["epochs"], labels.clone()))
        return real(model, images, labels, **kw)

    monkeypatch.setattr(protocol_module, "train_classifier", record)
    p = TrainProtocol(runs=1, epochs=7, augment="none")
    train_once(ctx, p, synset, 0.03, ("t",), synset.labels)
    k = ctx.task.num_classes
    assert [(n, lr, e) for _, n, lr, e, _ in calls] == [(k, 0.01, 3), (2 * k, 0.02, 2), (3 * k, 0.03, 2)]
    assert len({c[0] for c in calls}) == 1  # one network, trained on, not restarted
    for (_, n, _, _, labels) in calls:  # each stage sees S_1 ∪ .. ∪ S_k: every class, equally
        assert torch.bincount(labels, minlength=k).tolist() == [n // k] * k

    calls.clear()
    [res] = built("evaluator", "hard-label", p).evaluate(synset, ctx)
    assert len(calls) == 3
    assert res.extra["protocol"] == "sequential" and res.extra["stage_lrs"] == [0.01, 0.02, 0.03]
    assert res.extra["stage_sizes"] == [k, 2 * k, 3 * k] and res.extra["lr_source"] == "learned"

    # without learned lrs every stage uses the protocol's lr; sequential: false trains at once
    fixed = stage_plan(TrainProtocol(epochs=6, use_learned_lr=False), synset, 0.05)
    assert [s.lr for s in fixed] == [0.05] * 3 and [s.epochs for s in fixed] == [2, 2, 2]
    calls.clear()
    [res] = built("evaluator", "hard-label", TrainProtocol(runs=1, epochs=2, augment="none", sequential=False)).evaluate(synset, ctx)
    assert len(calls) == 1 and calls[0][1] == 3 * k and "protocol" not in res.extra
    plain = SyntheticSet(synset.images, synset.labels)
    assert stage_plan(p, plain, 0.01) is None


def test_soft_label_evaluation_is_sequential_too(tmp_path, monkeypatch):
    from condensery_eval import soft_label
    from condensery_eval.soft_label import SoftLabelOptions

    ctx = make_ctx(tmp_path, 3)
    synset = staged_set(ctx)
    calls = []
    real = soft_label.train_student

    def record(ctx_, p, images, lr, gen, teacher=None, stored=None, model=None, **kw):
        calls.append((images.shape[0], p.epochs, model is None))
        return real(ctx_, p, images, lr, gen, teacher, stored, model, **kw)

    monkeypatch.setattr(soft_label, "train_student", record)
    opts = SoftLabelOptions(runs=1, epochs=4, targets="stored", augment="none", mix="none")
    [res] = built("evaluator", "soft-label", opts).evaluate(synset, ctx)
    k = ctx.task.num_classes
    assert calls == [(k, 2, True), (2 * k, 1, False), (3 * k, 1, False)]
    assert res.extra["protocol"] == "sequential"


# -- end to end ---------------------------------------------------------------------------
RECIPE = """
name: seqmatch-tiny
seed: 0
data: {name: digits, train_per_class: 30}
model: {name: convnet, depth: 1, width: 8}
synthesizer:
  name: seqmatch
  ipc: 2
  k: 2
  iterations: 4
  lr: 0.05
  optimizer: adam
  warm_epochs: 1
  stage_experts: 1
  matcher: {name: trajectory, syn_steps: 2, expert_epochs: 1, max_start_epoch: 1, train_epochs: 2,
    num_experts: 1, lr_lr: 0.001}
evaluators:
  - {name: hard-label, runs: 2, epochs: 4}
runtime: {threads: 1}
"""


@pytest.fixture
def seqmatch_registered(monkeypatch):
    """The process registry with seqmatch, even where stale package metadata hides its entry point."""
    from condensery._engine import plugins

    if "seqmatch" not in plugins.get_registry().names("synthesizer"):
        import condensery_seqmatch.plugin as plugin

        monkeypatch.setattr(plugins, "_REGISTRY", plugins.build_registry([("seqmatch", plugin)]))


def test_tiny_end_to_end_run_on_digits(cli, tmp_path, seqmatch_registered):
    recipe = tmp_path / "seqmatch.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    res = cli("run", str(recipe), "-o", str(out), "--quiet")
    assert res.code == 0, res.err
    synset = SyntheticSet.load(out / "synthetic.safetensors")
    assert synset.stages.tolist() == [0] * 10 + [1] * 10 and len(synset.stage_lrs) == 2
    assert synset.metadata["method"] == "seqmatch" and synset.metadata["seqmatch"]["subsets"] == [1, 1]
    metrics = json.loads((out / "metrics.json").read_text())
    by_set = {r["set"]: r for r in metrics["results"]}
    assert by_set["synthetic"]["protocol"] == "sequential"
    assert by_set["synthetic"]["stage_lrs"] == synset.stage_lrs
    assert "protocol" not in by_set["random"]  # the random subset has no stages
    assert (out / "experts" / "expert_0000.safetensors").is_file()
