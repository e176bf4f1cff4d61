"""MGDD: deterministic any-size generation, generator folder round trip, adaptation lowers the
target loss, and the closed-form KRR label solve equals a direct least-squares solution."""

from __future__ import annotations

import json

import pytest
import torch
from condensery import RunContext, SyntheticSet, UserError, make_generator
from condensery._engine.generate import generate_file
from condensery._engine.plugins import get_registry
from condensery.api.context import Task
from condensery.api.data import RealData
from condensery.api.runtime import Runtime, RuntimeOptions
from condensery.data.digits import Digits
from condensery.data.options import DigitsOptions
from condensery.data.realdata import load_raw
from condensery_matching.distribution import DistributionMatcher, DistributionOptions
from condensery_matching.krr import KRRMatcher, KRROptions, solve_krr_labels
from condensery_mgdd.artifact import load_meta_generator as load_generator
from condensery_mgdd.artifact import save_meta_generator
from condensery_mgdd.generation import generate_set
from condensery_mgdd.generator import MetaGenerator, unet_config
from condensery_mgdd.synthesizer import MGDDOptions, MGDDSynthesizer
from condensery_mgdd.tasks import class_subset, sample_task

torch.set_num_threads(1)
MODEL = {"name": "convnet", "depth": 2, "width": 16, "norm": "instancenorm"}


def digits_ctx(tmp_path, ipc: int = 2) -> RunContext:
    src = Digits(DigitsOptions(cache=False))
    data = RealData.from_raw("digits", load_raw("digits", src), 0.1, True)
    runtime = Runtime(RuntimeOptions(cpu=True), seed=0)
    task = Task("digits", data.num_classes, data.class_names, data.image_shape, data.mean, data.std, dict(MODEL))
    recipe = {"name": "t", "data": {"name": "digits", "cache": False}, "model": dict(MODEL), "synthesizer": {"ipc": ipc}}
    return RunContext(task, data, runtime, get_registry(), tmp_path, recipe)


def tiny_generator(channels: int = 1, perturb: bool = True, gradient_input: bool = False,
                   refine_steps: int = 0) -> MetaGenerator:
    torch.manual_seed(0)
    cfg = unet_config(6 if gradient_input or refine_steps else 3, 16, [8, 16])
    cfg["out_channels"] = 3
    gen = MetaGenerator(cfg, 2, [channels], gradient_input=gradient_input, refine_steps=refine_steps, refine_lr=0.05)
    if perturb:  # a trained generator is not the identity: give the zero-initialised output weights
        with torch.no_grad():
            gen.unet.conv_out.weight.normal_(0, 0.05)
    return gen


def test_untrained_generator_is_the_identity_and_adapters_transfer_channels():
    gen = tiny_generator(3, perturb=False)
    x0 = torch.randn(6, 3, 32, 32)
    y0 = torch.arange(3).repeat_interleave(2)
    assert torch.equal(gen(x0, y0, 2), x0)
    assert gen.add_channels(1) and not gen.add_channels(1)
    assert gen.channel_counts == [1, 3]
    grey = torch.randn(6, 1, 8, 8)  # any size and channel count goes through
    assert gen(grey, y0, 2).shape == grey.shape


def test_residual_keeps_each_images_channel_means():
    # a trained generator must not shift channel means (the krr loss barely sees them)
    gen = tiny_generator(3)
    with torch.no_grad():
        gen.adapters_out["3"].bias.fill_(0.5)
        x0 = torch.randn(6, 3, 16, 16)
        x = gen(x0, torch.arange(3).repeat_interleave(2), 2)
    assert (x - x0).abs().mean() > 1e-3  # it does refine
    assert torch.allclose(x.mean(dim=(2, 3)), x0.mean(dim=(2, 3)), atol=1e-5)


def test_generation_is_deterministic_per_seed_for_any_size(tmp_path):
    ctx = digits_ctx(tmp_path)
    gen = tiny_generator()
    for ipc in (1, 3, 7):
        a = generate_set(gen, ctx, ipc, seed=5)
        b = generate_set(gen, ctx, ipc, seed=5)
        assert a.images.shape == (10 * ipc, 1, 8, 8)
        assert torch.equal(a.labels, torch.arange(10).repeat_interleave(ipc))
        assert torch.equal(a.images, b.images)
    c = generate_set(gen, ctx, 3, seed=6)
    assert not torch.equal(c.images, generate_set(gen, ctx, 3, seed=5).images)


def test_saved_generator_round_trips_and_generate_writes_an_evaluable_set(tmp_path):
    ctx = digits_ctx(tmp_path)
    gen = tiny_generator()
    folder = save_meta_generator(gen, tmp_path / "generator", {"recipe": {"data": {"name": "digits", "cache": False}, "model": MODEL}})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["type"] == "mgdd"
    loaded, config = load_generator(folder)
    assert config["channel_counts"] == [1]
    for k, v in gen.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x0, y0 = ctx.data.balanced_batch(2, make_generator(0, "x"))
    with torch.no_grad():
        assert torch.equal(gen(x0, y0, 2), loaded(x0, y0, 2))
    # the command's path: same seed, same file contents; the header says what it is
    out1 = generate_file(folder, 4, tmp_path / "a.safetensors", seed=1)
    out2 = generate_file(folder, 4, tmp_path / "b.safetensors", seed=1)
    s1, s2 = SyntheticSet.load(out1), SyntheticSet.load(out2)
    assert s1.images.shape == (40, 1, 8, 8) and torch.equal(s1.images, s2.images)
    assert s1.metadata["method"] == "mgdd" and s1.metadata["class_names"] == ctx.task.class_names
    assert s1.metadata["generate_seconds"] > 0  # the study's wall time of (a) at other sizes
    assert torch.equal(s1.images, generate_set(loaded, ctx, 4, seed=1).images)


def test_generator_starts_from_the_evaluators_random_subset(tmp_path):
    # (a) vs (b) is paired: X0 is the very subset the evaluators report as the random baseline
    ctx = digits_ctx(tmp_path)
    gen = tiny_generator()
    rnd = ctx.random_subset(3)
    initial = generate_set(gen, ctx, 3, seed=ctx.runtime.seed, refine=False)
    assert torch.equal(initial.images, rnd.images) and torch.equal(initial.labels, rnd.labels)
    refined = generate_set(gen, ctx, 3, seed=ctx.runtime.seed)
    assert not torch.equal(refined.images, rnd.images)
    folder = save_meta_generator(gen, tmp_path / "generator", {"recipe": {"data": {"name": "digits", "cache": False}, "model": MODEL}})
    written = SyntheticSet.load(generate_file(folder, 3, tmp_path / "x0.safetensors", seed=0, options={"initial": True}))
    assert torch.equal(written.images, rnd.images) and written.metadata["method"] == "random"


SMALL_KRR = {"name": "krr", "dsa": False, "num_models": 1, "width": 16, "batch_real": 8}


def test_gradient_input_generator_refines_per_draw_and_generates_reproducibly(tmp_path):
    # the refiner reads the matcher gradient at X0; generation rebuilds that matcher from config.json
    gen = tiny_generator(gradient_input=True, perturb=False)
    x0 = torch.randn(6, 1, 8, 8)
    y0 = torch.arange(3).repeat_interleave(2)
    g1, g2 = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    assert torch.equal(gen(x0, y0, 2, grad=g1), x0)  # still the identity untrained
    with pytest.raises(ValueError, match="grad"):
        gen(x0, y0, 2)
    with torch.no_grad():
        gen.unet.conv_out.weight.normal_(0, 0.05)
        assert not torch.allclose(gen(x0, y0, 2, grad=g1), gen(x0, y0, 2, grad=g2))  # the gradient matters
    ctx = digits_ctx(tmp_path)
    matcher = KRRMatcher(KRROptions(**{k: v for k, v in SMALL_KRR.items() if k != "name"}))
    info = {"recipe": {"data": {"name": "digits", "cache": False}, "model": MODEL, "matcher": SMALL_KRR}}
    folder = save_meta_generator(gen, tmp_path / "generator", info)
    loaded, config = load_generator(folder)
    assert config["gradient_input"] and loaded.gradient_input
    a = SyntheticSet.load(generate_file(folder, 3, tmp_path / "a.safetensors", seed=0))
    b = SyntheticSet.load(generate_file(folder, 3, tmp_path / "b.safetensors", seed=0))
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.images, generate_set(loaded, ctx, 3, seed=0, matcher=matcher).images)
    assert not torch.equal(a.images, ctx.random_subset(3).images)
    with pytest.raises(UserError, match="matcher"):
        generate_set(loaded, ctx, 3, seed=0)


def test_untrained_unrolled_refiner_is_adam_at_its_step_size():
    # the unrolled refiner starts as refine_steps Adam steps of size refine_lr on the same gradients
    gen = tiny_generator(refine_steps=4, perturb=False)
    x0 = torch.randn(6, 1, 8, 8)
    y0 = torch.arange(3).repeat_interleave(2)
    target = torch.randn_like(x0)

    def grad_fn(x, t):  # a deterministic gradient sequence that changes with the step
        return (x - target) * (1 + t)

    with pytest.raises(ValueError, match="grad_fn"):
        gen(x0, y0, 2)
    x = gen(x0, y0, 2, grad_fn=grad_fn)
    pixels = x0.clone().requires_grad_(True)
    adam = torch.optim.Adam([pixels], lr=0.05)
    for t in range(4):
        pixels.grad = grad_fn(pixels.detach(), t)
        adam.step()
    assert torch.allclose(x, pixels.detach(), atol=1e-5) and not torch.allclose(x, x0)
    # the learned parts shape the result: larger step sizes, and a non-zero correction
    with torch.no_grad():
        gen.log_step_scale.fill_(1.0)
        longer = gen(x0, y0, 2, grad_fn=grad_fn)
        assert (longer - target).abs().mean() < (x - target).abs().mean()
        gen.unet.conv_out.weight.normal_(0, 0.05)
        assert not torch.allclose(gen(x0, y0, 2, grad_fn=grad_fn), longer)


def test_unrolled_generator_round_trips_and_generates_reproducibly(tmp_path):
    gen = tiny_generator(refine_steps=3)
    with torch.no_grad():
        gen.log_step_scale.copy_(torch.tensor([0.5, 0.0, -0.5]))
    info = {"recipe": {"data": {"name": "digits", "cache": False}, "model": MODEL, "matcher": SMALL_KRR}}
    folder = save_meta_generator(gen, tmp_path / "generator", info)
    loaded, config = load_generator(folder)
    assert config["refine_steps"] == 3 and config["refine_lr"] == 0.05
    assert torch.equal(loaded.step_sizes(), gen.step_sizes())
    a = SyntheticSet.load(generate_file(folder, 3, tmp_path / "a.safetensors", seed=0))
    b = SyntheticSet.load(generate_file(folder, 3, tmp_path / "b.safetensors", seed=0))
    c = SyntheticSet.load(generate_file(folder, 5, tmp_path / "c.safetensors", seed=0))
    assert torch.equal(a.images, b.images) and c.images.shape[0] == 50
    x0 = SyntheticSet.load(generate_file(folder, 3, tmp_path / "x0.safetensors", seed=0, options={"initial": True}))
    assert not torch.equal(a.images, x0.images)


def test_krr_label_solve_matches_direct_least_squares():
    g = torch.Generator().manual_seed(0)
    fs, ft = torch.randn(4, 6, generator=g), torch.randn(9, 6, generator=g)
    yt = torch.nn.functional.one_hot(torch.randint(3, (9,), generator=g), 3).double() - 1 / 3
    reg = 1e-3
    got = solve_krr_labels(fs.double(), ft.double(), yt, reg)
    kss = fs.double() @ fs.double().T
    a = (ft.double() @ fs.double().T) @ torch.linalg.inv(kss + reg * torch.trace(kss) / 4 * torch.eye(4, dtype=torch.float64))
    direct = torch.linalg.lstsq(a, yt).solution
    assert torch.allclose(got, direct, atol=1e-8)
    # and it is the minimiser: any perturbation raises the residual
    res = ((a @ got - yt) ** 2).sum()
    assert res < ((a @ (got + 1e-3 * torch.randn(got.shape, generator=g, dtype=torch.float64)) - yt) ** 2).sum()


def test_sub_tasks_are_class_subsets_with_their_own_ipc(tmp_path):
    ctx = digits_ctx(tmp_path)
    t = sample_task(0, 3, 10, 2, 4, [1, 2, 5], smallest_class=100)
    assert 2 <= len(t.classes) <= 4 and t.ipc in (1, 2, 5)
    assert sample_task(0, 3, 10, 2, 4, [1, 2, 5], 100) == t
    sub = class_subset(ctx.data, t.classes)
    assert sub.num_classes == len(t.classes)
    assert torch.equal(sub.train_x[sub.class_indices[0]], ctx.data.train_x[ctx.data.class_indices[t.classes[0]]])


@pytest.mark.parametrize("kind", ["x0", "gradient-input", "unrolled", "x0-distribution"])
def test_adaptation_lowers_the_target_loss(tmp_path, kind):
    ctx = digits_ctx(tmp_path)
    if kind.endswith("distribution"):  # "or another matcher, by option": DM as the adaptation objective
        ctx.matcher = DistributionMatcher(DistributionOptions(dsa=False, batch_real=16))
    else:
        ctx.matcher = KRRMatcher(KRROptions(dsa=False, num_models=1, width=32, batch_real=16, resample_every=1000))
    ctx.matcher.prepare(ctx)
    start_gen = tiny_generator(perturb=False, gradient_input=kind == "gradient-input",
                               refine_steps=3 if kind == "unrolled" else 0)
    folder = save_meta_generator(start_gen, tmp_path / "start", {"recipe": {"data": {"name": "digits"}}})
    opts = MGDDOptions(mode="adapt", ipc=2, generator=str(folder), adapt={"steps": 25, "lr": 1e-2, "ipcs": [2], "draws": 1},
                       labels={"models": 1, "width": 32, "batch_real": 16})
    synth = MGDDSynthesizer(opts)

    def target_loss(gen) -> float:
        """On the adapted initial set, against real batches never used in adaptation."""
        labeler = synth.labeler_for(ctx)
        total = 0.0
        for i in range(4):
            ctx.matcher.gen = make_generator(0, "held-out-real", i)
            with torch.no_grad():
                total += float(synth.task_loss(ctx, ctx.matcher, labeler, gen, 2, ("adapt", 0, 0), 0))
        return total / 4

    start, _ = load_generator(folder)
    before = target_loss(start)
    synth.synthesize(ctx)
    adapted, config = load_generator(tmp_path / "generator")
    after = target_loss(adapted)
    assert config["history"][-1]["mode"] == "adapt"
    assert after < 0.97 * before, (before, after)


def test_loss_dsa_judges_the_generator_under_augmentation(tmp_path):
    # loss_dsa: the generator's training loss is the matcher's loss under siamese DSA (one augmented
    # copy per matcher, its real-batch stream kept across steps); the steps still use the plain matcher
    ctx = digits_ctx(tmp_path)
    matcher = KRRMatcher(KRROptions(dsa=False, num_models=1, width=16, batch_real=8))
    matcher.prepare(ctx)
    gen = tiny_generator(perturb=False, refine_steps=2)
    synth = MGDDSynthesizer(MGDDOptions(ipc=2, labels={"krr": False}, loss_dsa=True))
    judge = synth.augmented(ctx, matcher)
    assert judge is synth.augmented(ctx, matcher) and judge.dsa is not None and matcher.dsa is None
    calls = {"judge": 0, "plain": 0}
    for name, m in (("judge", judge), ("plain", matcher)):
        def counted(*args, _loss=m.loss, _name=name, **kwargs):
            calls[_name] += 1
            return _loss(*args, **kwargs)
        m.loss = counted
    with torch.no_grad():
        loss = synth.task_loss(ctx, matcher, None, gen, 2, ("adapt", 0, 0), 0)
    assert torch.isfinite(loss) and calls == {"judge": 1, "plain": 2}  # 2 refine steps, 1 judged loss
    no_dsa = MGDDSynthesizer(MGDDOptions(ipc=2, labels={"krr": False}))
    with torch.no_grad():
        no_dsa.task_loss(ctx, matcher, None, gen, 2, ("adapt", 0, 0), 0)
    assert calls == {"judge": 1, "plain": 5}


def test_gradient_input_and_unrolled_refinement_exclude_each_other():
    with pytest.raises(ValueError, match="exclude each other"):
        MGDDOptions(mode="meta-train", architecture={"gradient_input": True, "refine_steps": 2})
    assert MGDDOptions(mode="meta-train", architecture={"refine_steps": 2}).architecture.refine_steps == 2


def test_adapt_without_generator_is_a_user_error(tmp_path):
    ctx = digits_ctx(tmp_path)
    ctx.matcher = KRRMatcher(KRROptions(dsa=False))
    with pytest.raises(UserError, match="needs synthesizer.generator"):
        MGDDSynthesizer(MGDDOptions(mode="adapt")).synthesize(ctx)


def test_generator_runs_under_bf16_autocast_on_the_cpu():
    # meta-training with runtime.mixed_precision=bf16 crashed: the CPU has no bf16 kernel for the
    # antialiased resampling of the residual back to the image size (8x8 digits, 16x16 working)
    gen = tiny_generator()
    x0 = torch.randn(6, 1, 8, 8)
    y0 = torch.arange(3).repeat_interleave(2)
    full = gen(x0, y0, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gen(x0, y0, 2)
    assert mixed.dtype == torch.float32 and mixed.shape == x0.shape
    assert torch.allclose(mixed, full, atol=0.05) and not torch.equal(mixed, x0)


def test_solved_support_targets_go_only_to_a_matcher_offering_them(tmp_path, monkeypatch):
    """MGDD's ``TargetMatching`` capability: krr gets the closed-form targets, distribution its plain loss."""
    ctx = digits_ctx(tmp_path)
    synth = MGDDSynthesizer(MGDDOptions(ipc=2, loss_dsa=False, labels={"models": 1, "width": 16, "batch_real": 8}))
    ctx.matcher = DistributionMatcher(DistributionOptions(dsa=False, batch_real=8))
    ctx.matcher.prepare(ctx)
    assert synth.labeler_for(ctx) is None
    ctx.matcher = KRRMatcher(KRROptions(dsa=False, num_models=1, width=16, batch_real=8))
    ctx.matcher.prepare(ctx)
    labeler = synth.labeler_for(ctx)
    assert labeler is not None
    seen = []
    monkeypatch.setattr(ctx.matcher, "loss_with_targets", lambda x, y, step, targets: seen.append(targets) or x.sum())
    synth.task_loss(ctx, ctx.matcher, labeler, tiny_generator(perturb=False), 2, ("t",), 0)
    [targets] = seen
    assert targets.shape == (2 * ctx.task.num_classes, ctx.task.num_classes)
