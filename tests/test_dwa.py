"""DWA: the directed perturbation (norm rho, raises the real loss, teacher untouched), recover
against theta + delta leaves the teacher bit-identical, and a tiny end-to-end run on digits."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from condensery import RunContext, SyntheticSet
from condensery._engine.plugins import get_registry
from condensery.api.context import Task
from condensery.api.data import RealData
from condensery.api.runtime import Runtime, RuntimeOptions
from condensery.data.digits import Digits
from condensery.data.options import DigitsOptions
from condensery.data.realdata import load_raw
from condensery_dwa.adjust import directed_perturbation, global_norm, perturbed_parameters
from condensery_dwa.diversity import feature_diversity
from condensery_dwa.synthesizer import DWAOptions, DWASynthesizer

torch.set_num_threads(1)
TEACHER = {"name": "convnet_bn", "depth": 2, "width": 16}


def make_ctx(tmp_path) -> RunContext:
    data = RealData.from_raw("digits", load_raw("digits", Digits(DigitsOptions(cache=False))), 0.1, True)
    task = Task("digits", data.num_classes, data.class_names, data.image_shape, data.mean, data.std, dict(TEACHER))
    return RunContext(task, data, Runtime(RuntimeOptions(cpu=True), seed=0), get_registry(), tmp_path, {})


def make_teacher(ctx: RunContext):
    torch.manual_seed(0)
    net = ctx.registry.build_model(TEACHER, ctx.task)
    with torch.no_grad():  # give the BN layers non-trivial running statistics
        net.train()
        net(ctx.data.train_x[:256])
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def snapshot(net) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def assert_untouched(net, before) -> None:
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in net.parameters())


def test_perturbation_has_norm_rho_and_raises_the_real_loss(tmp_path):
    ctx = make_ctx(tmp_path)
    net = make_teacher(ctx)
    before = snapshot(net)
    x, y = ctx.data.train_x[:20], ctx.data.train_y[:20]
    rho = 0.015
    one = directed_perturbation(net, x, y, rho, steps=1)
    assert float(global_norm(list(one.values()))) == pytest.approx(rho, rel=1e-4)
    delta = directed_perturbation(net, x, y, rho, steps=12)
    norm = float(global_norm(list(delta.values())))
    assert 0.5 * rho < norm <= rho * (1 + 1e-4)
    big = directed_perturbation(net, x, y, 1.0, steps=12)  # same direction, larger step: clearly uphill
    with torch.no_grad():
        base = F.cross_entropy(net(x), y)
        up = F.cross_entropy(torch.func.functional_call(net, perturbed_parameters(net, delta), (x,)), y)
        up_big = F.cross_entropy(torch.func.functional_call(net, perturbed_parameters(net, big), (x,)), y)
    assert up > base and up_big > up
    assert set(delta) == {k for k, _ in net.named_parameters()}
    assert_untouched(net, before)
    zero = directed_perturbation(net, x, y, 0.0, steps=12)
    assert all(float(v.abs().max()) == 0 for v in zero.values())


def test_recover_leaves_the_teacher_bit_identical_and_stays_in_range(tmp_path):
    ctx = make_ctx(tmp_path)
    net = make_teacher(ctx)
    before = snapshot(net)
    synth = DWASynthesizer(DWAOptions(ipc=1, iterations=4, lr=0.1, shift=1, steps=3))
    matcher = synth.make_matcher(ctx)
    real, labels = ctx.data.balanced_batch(1, torch.Generator().manual_seed(0))
    x, info = synth.recover_batch(ctx, net, matcher, 0, real, labels)
    assert_untouched(net, before)
    assert info["delta_norm"] == pytest.approx(0.015, rel=0.5)
    lo, hi = synth.pixel_range(ctx)
    assert (x >= lo - 1e-6).all() and (x <= hi + 1e-6).all()
    assert not torch.equal(x, real.clamp(lo, hi))
    assert matcher.params is None  # the perturbed weights are dropped after the batch


def test_diversity_is_zero_for_copies_and_positive_for_distinct_images(tmp_path):
    ctx = make_ctx(tmp_path)
    net = make_teacher(ctx)
    x = ctx.data.train_x[:1].repeat(4, 1, 1, 1)
    y = torch.zeros(4, dtype=torch.long)
    assert feature_diversity(net, x, y) == pytest.approx(0.0, abs=1e-5)
    assert feature_diversity(net, ctx.data.train_x[:8], torch.zeros(8, dtype=torch.long)) > 0.0
    assert feature_diversity(net, x[:1], y[:1]) is None


RECIPE = """
name: tiny-dwa
seed: 0
data: {{name: digits}}
model: {{name: convnet_bn, width: 32}}
synthesizer:
  name: dwa
  ipc: 2
  teacher_model: {{name: convnet_bn, width: 32}}
  teacher_epochs: 3
  teacher_lr: 0.05
  teacher_batch_size: 128
  iterations: 5
  steps: 3
  lr: 0.1
  shift: 1
  init: {init}
  rho: {rho}
evaluators:
  - {{name: diversity}}
  - name: soft-label
    runs: 1
    epochs: 2
"""


@pytest.mark.slow
def test_end_to_end_on_digits(tmp_path, cli):
    out = tmp_path / "run"
    recipe = tmp_path / "dwa.yaml"
    recipe.write_text(RECIPE.format(out=out, init="real", rho=0.015))
    res = cli("run", str(recipe), "-o", str(out), "--quiet")
    assert res.code == 0, res.err
    synset = SyntheticSet.load(out / "synthetic.safetensors")
    assert synset.images.shape == (20, 1, 8, 8)
    assert synset.soft and synset.labels.shape == (20, 10)
    assert torch.allclose(synset.labels.sum(dim=1), torch.ones(20), atol=1e-5)
    assert synset.metadata["target_labels"] == [c for c in range(10) for _ in range(2)]
    teacher = synset.metadata["teacher"]
    assert teacher["model"] == {"name": "convnet_bn", "width": 32}
    assert (out / "teacher.safetensors").is_file() and teacher["path"] == str((out / "teacher.safetensors").resolve())
    assert 0 < synset.metadata["synthesis"]["mean_delta_norm"] <= 0.015 * (1 + 1e-4)
    metrics = json.loads((out / "metrics.json").read_text())
    kinds = {(r["evaluator"], r["set"]) for r in metrics["results"]}
    assert {("soft-label", "synthetic"), ("soft-label", "random"), ("diversity", "synthetic"), ("diversity", "random")} <= kinds
    # no teacher.path in the recipe: both sets are judged with the teacher the set records
    soft = [r for r in metrics["results"] if r["evaluator"] == "soft-label"]
    assert [r["teacher_source"] for r in soft] == ["set metadata", "set metadata"]
    assert {r["teacher_path"] for r in soft} == {teacher["path"]}
    # SRe2L is the same synthesizer with rho 0 and noise init; it reuses the teacher file given
    out2 = tmp_path / "sre2l"
    recipe.write_text(RECIPE.format(out=out2, init="noise", rho=0.0).replace(
        "teacher_model:", f"teacher: {out}/teacher.safetensors\n  teacher_model:"))
    res = cli("run", str(recipe), "-o", str(out2), "--quiet")
    assert res.code == 0, res.err
    s2 = SyntheticSet.load(out2 / "synthetic.safetensors")
    assert s2.metadata["synthesis"]["mean_delta_norm"] == 0.0 and s2.metadata["variant"] == "sre2l"
    assert not (out2 / "teacher.safetensors").exists()


@pytest.mark.slow
def test_two_processes_split_the_batches_and_give_the_same_set(tmp_path, cli):
    recipe = tmp_path / "dwa.yaml"
    recipe.write_text(RECIPE.format(out=tmp_path, init="real", rho=0.015))
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli("run", str(recipe), "-o", str(one), "--quiet").code == 0
    res = cli("run", str(recipe), "-o", str(two), "--quiet", "--processes", "2")
    assert res.code == 0, res.err
    a, b = (SyntheticSet.load(d / "synthetic.safetensors") for d in (one, two))
    assert torch.allclose(a.images, b.images, atol=1e-5, rtol=0)
    assert torch.allclose(a.labels, b.labels, atol=1e-6, rtol=0)
    shares = [next(s for s in json.loads((two / "logs" / f"process-{i}.json").read_text())["shares"]
                   if s["label"] == "recover batches") for i in range(2)]
    assert shares[0]["items"] and shares[1]["items"]
    assert sorted(shares[0]["items"] + shares[1]["items"]) == list(range(shares[0]["of"]))
