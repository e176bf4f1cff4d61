"""Matchers: distances, losses that go down, trajectory normalisation, DSA siamese-ness."""

from __future__ import annotations

import torch
from condensery import RunContext, SyntheticSet, make_generator
from condensery._engine.plugins import get_registry
from condensery.api.context import Task
from condensery.api.data import RealData
from condensery.api.runtime import Runtime, RuntimeOptions
from condensery.data import DSA
from condensery.data.digits import Digits
from condensery.data.options import DigitsOptions
from condensery.data.realdata import load_raw
from condensery_matching.gradient import (
    GradientMatcher,
    GradientOptions,
    default_loops,
    gradient_distance,
    matched_parameters,
)

torch.set_num_threads(1)
SMALL_MODEL = {"name": "convnet", "depth": 2, "width": 16, "norm": "instancenorm"}


def make_ctx(tmp_path, ipc: int = 1, model: dict | None = None, train_per_class: int | None = None) -> RunContext:
    """A RunContext on the embedded digits with a small ConvNet (no files needed)."""
    src = Digits(DigitsOptions(cache=False))
    data = RealData.from_raw("digits", load_raw("digits", src), 0.1, True)
    if train_per_class is not None:
        idx = torch.cat([data.class_indices[c][:train_per_class] for c in range(data.num_classes)])
        data = RealData("digits", data.train_x[idx], data.train_y[idx], data.val_x, data.val_y,
                        data.test_x, data.test_y, data.class_names, data.mean, data.std)
    runtime = Runtime(RuntimeOptions(cpu=True), seed=0)
    task = Task("digits", data.num_classes, data.class_names, data.image_shape, data.mean, data.std,
                dict(model or SMALL_MODEL))
    recipe = {"synthesizer": {"ipc": ipc}}
    return RunContext(task, data, runtime, get_registry(), tmp_path, recipe)


def optimise(matcher, ctx: RunContext, ipc: int, steps: int, lr: float, opt="sgd") -> list[float]:
    """Optimise pixels (and matcher parameters) like the pixel synthesizer; return the losses."""
    x, y = ctx.data.balanced_batch(ipc, make_generator(0, "init"))
    images = x.clone().requires_grad_(True)
    groups = [{"params": [images], "lr": lr}] + [{"params": [t], "lr": r} for t, r in matcher.parameters()]
    optim = torch.optim.SGD(groups, momentum=0.5) if opt == "sgd" else torch.optim.Adam(groups)
    losses = []
    for step in range(steps):
        loss = matcher.loss(images, y, step)
        losses.append(loss.item())
        optim.zero_grad()
        loss.backward()
        optim.step()
        matcher.after_step(images, y, step)
    return losses


# -- gradient matching -----------------------------------------------------------------
def test_default_loops_follow_the_paper():
    assert default_loops(1) == (1, 1)
    assert default_loops(10) == (10, 50)
    assert default_loops(50) == (50, 10)


def test_gradient_distance_of_identical_batches_is_zero(tmp_path):
    ctx = make_ctx(tmp_path)
    m = GradientMatcher(GradientOptions(dsa=False))
    m.prepare(ctx)
    net = m._network(0)
    x = ctx.data.train_x[:20]
    y = ctx.data.train_y[:20]
    g1 = m.class_gradients(net, x, y, create_graph=False)
    g2 = m.class_gradients(net, x.clone(), y, create_graph=False)
    for dist in ("channel-cosine", "mse", "cosine"):
        assert float(gradient_distance(g1, g2, dist)) < 1e-3
    other = m.class_gradients(net, ctx.data.train_x[20:40], ctx.data.train_y[20:40], create_graph=False)
    assert float(gradient_distance(g1, other)) > 0.1


def test_gradient_skips_bias_and_norm_parameters(tmp_path):
    ctx = make_ctx(tmp_path)
    net = ctx.create_model()
    matched = matched_parameters(net)
    assert matched and all(p.dim() > 1 for p in matched)
    assert len(matched) == 3  # two convs and the classifier of a depth-2 ConvNet


def test_channel_cosine_is_per_output_channel():
    g = torch.randn(4, 3, 3, 3)
    flipped = g.clone()
    flipped[0] = -flipped[0]  # one channel points the other way: distance 2 on that row only
    d = gradient_distance([g], [flipped])
    assert abs(float(d) - 2.0) < 1e-3


def test_gradient_loss_decreases(tmp_path):
    ctx = make_ctx(tmp_path, ipc=1)
    m = GradientMatcher(GradientOptions(dsa=False, batch_real=32, outer_loop=1, inner_loop=0))
    m.prepare(ctx)
    # one fixed network (outer_loop=1 would start a new one each step): pin the iteration
    m.outer = 10**6
    losses = optimise(m, ctx, ipc=1, steps=25, lr=0.1)
    assert losses[-1] < 0.8 * losses[0], losses


def test_gradient_dsa_uses_same_parameters_for_real_and_synthetic(tmp_path, monkeypatch):
    ctx = make_ctx(tmp_path)
    m = GradientMatcher(GradientOptions(dsa=True, batch_real=8))
    m.prepare(ctx)
    seen = []
    real_apply = DSA.apply

    def spy(self, x, params, group_of=None):
        seen.append(params)
        return real_apply(self, x, params, group_of)

    monkeypatch.setattr(DSA, "apply", spy)
    x, y = ctx.data.balanced_batch(1, make_generator(0, "x"))
    m.loss(x.clone().requires_grad_(True), y, 0)
    assert len(seen) == 2 and seen[0] is seen[1]


def test_gradient_inner_loop_trains_the_network_between_outer_steps(tmp_path):
    ctx = make_ctx(tmp_path, ipc=2)
    m = GradientMatcher(GradientOptions(dsa=False, batch_real=8, outer_loop=2, inner_loop=1))
    m.prepare(ctx)
    x, y = ctx.data.balanced_batch(2, make_generator(0, "x"))
    m.loss(x, y, 0)
    before = [p.detach().clone() for p in m.net.parameters()]
    m.after_step(x, y, 0)  # not the last outer step: trains
    assert any(not torch.equal(a, b) for a, b in zip(before, m.net.parameters()))
    net = m.net
    m.loss(x, y, 2)  # next iteration: a fresh network
    assert m.net is not net
    assert isinstance(SyntheticSet(x, y), SyntheticSet)


# -- trajectory matching -----------------------------------------------------------------
from condensery_matching.experts import (  # noqa: E402
    ExpertSpec,
    available_experts,
    expert_path,
    read_epochs,
    read_header,
    train_experts,
)
from condensery_matching.trajectory import TrajectoryMatcher, TrajectoryOptions  # noqa: E402

TINY = {"name": "convnet", "depth": 1, "width": 8, "norm": "instancenorm"}


def traj_options(tmp_path, **kw) -> TrajectoryOptions:
    base = dict(syn_steps=3, expert_epochs=1, max_start_epoch=1, train_epochs=2, num_experts=2,
                experts_dir=str(tmp_path / "experts"), expert_batch=64, lr_init=0.01, lr_lr=1e-4)
    base.update(kw)
    return TrajectoryOptions(**base)


def test_trajectory_options_validate_the_epoch_window():
    import pytest

    with pytest.raises(ValueError):
        TrajectoryOptions(max_start_epoch=49, expert_epochs=2, train_epochs=50)


def test_experts_are_written_resumable_and_split(tmp_path):
    ctx = make_ctx(tmp_path, model=TINY, train_per_class=20)
    m = TrajectoryMatcher(traj_options(tmp_path))
    m.numels = [p.numel() for p in ctx.create_model().parameters()]
    spec = m.expert_spec(ctx)
    d = tmp_path / "experts"
    # process 1 of 2 trains only the odd experts
    assert train_experts(ctx, spec, d, 3, process_index=1, num_processes=2) == [1]
    assert not expert_path(d, 0).exists() and expert_path(d, 1).exists()
    header = read_header(expert_path(d, 1))
    assert header["epochs"] == 2 and header["num_params"] == sum(m.numels)
    rows = read_epochs(expert_path(d, 1), [0, 2])
    assert rows[0].shape == (sum(m.numels),) and not torch.equal(rows[0], rows[1])
    # process 0 trains the rest; a rerun trains nothing (resumable)
    assert train_experts(ctx, spec, d, 3, process_index=0, num_processes=2) == [0, 2]
    assert train_experts(ctx, spec, d, 3) == []
    assert len(available_experts(d, spec)) == 3
    # an expert trained for another network is refused with a clear error
    from condensery import UserError

    other = ExpertSpec(**{**spec.__dict__, "num_params": 5})
    import pytest

    with pytest.raises(UserError, match="experts_dir"):
        available_experts(d, other)
    # an option spelled out as None (shards written before the option existed) is no difference...
    assert len(available_experts(d, ExpertSpec(**{**spec.__dict__, "data": {**spec.data, "classes": None}}))) == 3
    # ...but a set option is
    with pytest.raises(UserError, match="experts_dir"):
        available_experts(d, ExpertSpec(**{**spec.__dict__, "data": {**spec.data, "classes": [0, 1]}}))


def _traj_matcher(tmp_path, ctx, **kw) -> TrajectoryMatcher:
    m = TrajectoryMatcher(traj_options(tmp_path, **kw))
    m.prepare(ctx)  # trains the two missing experts itself
    return m


def test_trajectory_loss_is_normalised_as_in_the_paper(tmp_path):
    ctx = make_ctx(tmp_path, model=TINY, train_per_class=20)
    m = _traj_matcher(tmp_path, ctx, dsa=False)
    assert len(m.experts) == 2
    start, target = read_epochs(m.experts[0], [0, 1])
    x, y = ctx.data.balanced_batch(2, make_generator(0, "x"))
    plan = m.plan_unroll(x.shape[0])
    loss = m.trajectory_loss(start, target, x, y, plan)
    end = m.unroll(start, x, y, m.syn_lr, plan)
    expected = ((end - target) ** 2).sum() / ((start - target) ** 2).sum()
    assert torch.allclose(loss, expected)
    # a zero lr leaves the student at θ*_t: the loss is exactly 1
    with torch.no_grad():
        m.syn_lr.fill_(0.0)
    assert abs(m.trajectory_loss(start, target, x, y, plan).item() - 1.0) < 1e-6


def test_trajectory_checkpointed_unroll_gives_the_same_result(tmp_path):
    ctx = make_ctx(tmp_path, model=TINY, train_per_class=20)
    m = _traj_matcher(tmp_path, ctx, dsa=True, batch_syn=7)
    start, target = read_epochs(m.experts[1], [0, 1])
    x0, y = ctx.data.balanced_batch(2, make_generator(0, "x"))
    plan = m.plan_unroll(x0.shape[0])
    results = []
    for ckpt in (False, True):
        m.options.checkpoint_unroll = ckpt
        x = x0.clone().requires_grad_(True)
        m.syn_lr.grad = None
        loss = m.trajectory_loss(start, target, x, y, plan)
        loss.backward()
        results.append((loss.detach(), x.grad.clone(), m.syn_lr.grad.clone()))
    (l0, gx0, gl0), (l1, gx1, gl1) = results
    assert torch.allclose(l0, l1, rtol=1e-5)
    assert torch.allclose(gx0, gx1, rtol=1e-4, atol=1e-7)
    assert torch.allclose(gl0, gl1, rtol=1e-4)
    assert gx0.abs().sum() > 0 and gl0.abs() > 0


def test_trajectory_loss_decreases_and_lr_stays_positive(tmp_path):
    ctx = make_ctx(tmp_path, model=TINY, train_per_class=20)
    m = _traj_matcher(tmp_path, ctx, dsa=False, lr_lr=1e-3)
    # average over a fixed expert segment so the decrease is not drawn-expert noise
    m.experts = m.experts[:1]
    losses = optimise(m, ctx, ipc=2, steps=30, lr=1.0)
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5, losses
    assert m.learned_lr() > 0
    with torch.no_grad():
        m.syn_lr.fill_(-1.0)
    m.after_step(None, None, 0)
    assert abs(m.learned_lr() - m.options.lr_min) < 1e-9
    with torch.no_grad():
        m.syn_lr.fill_(float("nan"))
    m.after_step(None, None, 0)
    assert abs(m.learned_lr() - m.options.lr_min) < 1e-9


# -- kernel ridge regression ---------------------------------------------------------------
from condensery_matching.krr import (  # noqa: E402
    KRRMatcher,
    KRROptions,
    centred_one_hot,
    krr_predict,
    solve_krr_labels,
)


def test_solve_krr_labels_recovers_labels_that_fit_exactly():
    g = torch.Generator().manual_seed(0)
    fs = torch.randn(6, 40, generator=g)
    ft = torch.randn(30, 40, generator=g)
    y_true = torch.randn(6, 3, generator=g)
    y_real = krr_predict(fs, ft, y_true, 1e-6)  # real labels the support can explain exactly
    y = solve_krr_labels(fs, ft, y_real, 1e-6)
    assert torch.allclose(krr_predict(fs, ft, y, 1e-6), y_real, atol=1e-4)
    assert torch.allclose(y, y_true, atol=1e-3)


def test_krr_predicts_its_own_support():
    fs = torch.randn(5, 50, generator=torch.Generator().manual_seed(1))
    y = centred_one_hot(torch.arange(5), 5)
    assert torch.allclose(krr_predict(fs, fs, y, 1e-8), y, atol=1e-4)


def test_krr_loss_decreases_with_learned_labels(tmp_path):
    ctx = make_ctx(tmp_path, ipc=2)
    m = KRRMatcher(KRROptions(num_models=2, width=16, batch_real=8, learn_labels=True, label_lr=0.05,
                              resample_every=1000))
    m.prepare(ctx)
    assert len(m.parameters()) == 1
    losses = optimise(m, ctx, ipc=2, steps=15, lr=0.05, opt="adam")
    assert sum(losses[-5:]) < 0.9 * sum(losses[:5]), losses
    learned = m.learned_labels()
    assert learned.shape == (20, 10)
    assert not torch.allclose(learned, centred_one_hot(m.init_labels, 10))


def test_krr_networks_are_resampled(tmp_path):
    ctx = make_ctx(tmp_path)
    m = KRRMatcher(KRROptions(num_models=2, width=8, resample_every=2))
    m.prepare(ctx)
    a = m.networks(0)
    assert m.networks(1) is a
    b = m.networks(2)
    assert b is not a and not torch.equal(next(a[0].parameters()), next(b[0].parameters()))


# -- recipes ------------------------------------------------------------------------------
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

RECIPES = sorted((Path(__file__).resolve().parent.parent / "recipes").rglob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_resolves(path):
    """Each recipe validates against the registry (datasets' files need not exist)."""
    from condensery._engine.recipe import load_recipe, load_yaml, resolve

    if "synthesizer" not in load_yaml(path):  # an evaluation-only recipe states a task, no method
        plan = resolve(load_yaml(path), get_registry(), needs_synthesizer=False)
        assert plan.name and plan.synthesizer is None and plan.evaluators
        return
    plan = load_recipe(path, [], get_registry())
    assert plan.name and plan.synthesizer is not None


def test_matcher_recipes_exist_for_every_method_and_ipc():
    """CIFAR-10: every method at IPC 1/10/50 (the papers' grid). Digits ships a recipe only where
    it beats the random subset at the shipped budget, so there every method has IPC 1."""
    root = Path(__file__).resolve().parent.parent / "recipes"
    for method in ("dc", "dsa", "dm", "mtt", "krr"):
        for ipc in (1, 10, 50):
            assert (root / "cifar10" / f"{method}-ipc{ipc}.yaml").is_file(), ("cifar10", method, ipc)
        assert (root / "digits" / f"{method}-ipc1.yaml").is_file(), ("digits", method, 1)


def test_distribution_loss_decreases(tmp_path):
    from condensery_matching.distribution import DistributionMatcher, DistributionOptions

    ctx = make_ctx(tmp_path, ipc=1)
    m = DistributionMatcher(DistributionOptions(dsa=False, batch_real=32))
    m.prepare(ctx)
    losses = optimise(m, ctx, ipc=1, steps=20, lr=1.0)
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5]), losses


def test_distribution_chunks_change_memory_not_the_loss_nor_the_gradients(tmp_path, monkeypatch):
    """DM embeds real and synthetic images in chunks: with per-sample normalisation the loss and the image gradients
    (so the set) are the same bit for bit for any chunk size; with batch norm each batch goes at once."""
    from condensery_matching.distribution import DistributionMatcher, DistributionOptions

    ctx = make_ctx(tmp_path, ipc=2)
    images = ctx.data.train_x[torch.arange(10).repeat_interleave(2) * 5].clone().requires_grad_(True)
    labels = torch.arange(10).repeat_interleave(2)
    grads = []
    for chunk in (7, 64, 100_000):
        m = DistributionMatcher(DistributionOptions(batch_real=16, chunk=chunk))
        m.prepare(ctx)
        images.grad = None
        loss = m.loss(images, labels, 3)
        loss.backward()
        grads.append((loss.detach(), images.grad.clone()))
    assert all(torch.equal(g[0], grads[0][0]) and torch.equal(g[1], grads[0][1]) for g in grads[1:])

    batch_sizes: list[int] = []
    conv_forward = torch.nn.Conv2d.forward

    def spy(self, x):
        batch_sizes.append(x.shape[0])
        return conv_forward(self, x)

    monkeypatch.setattr(torch.nn.Conv2d, "forward", spy)
    m = DistributionMatcher(DistributionOptions(batch_real=16, chunk=7))
    m.prepare(make_ctx(tmp_path / "bn", ipc=2, model={"name": "convnet_bn", "depth": 2, "width": 8}))
    batch_sizes.clear()
    m.loss(images.detach(), labels, 3)
    assert 160 in batch_sizes and 7 not in batch_sizes  # batch norm: the whole real batch (10 x 16) at once
    m = DistributionMatcher(DistributionOptions(batch_real=16, chunk=7))
    m.prepare(ctx)
    batch_sizes.clear()
    m.loss(images.detach(), labels, 3)
    assert 7 in batch_sizes and 160 not in batch_sizes  # instance norm: chunks of 7
