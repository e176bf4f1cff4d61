"""runtime.compile: the option, eager when off, one-line fallback, and no recompilation per step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from condensery import RunContext
from condensery._engine.plugins import get_registry
from condensery.api.compiling import AUTO_MIN_PASSES, AUTO_MIN_WORK, Compiler
from condensery.api.context import Task
from condensery.api.data import RealData
from condensery.api.runtime import Runtime, RuntimeOptions
from condensery.data.digits import Digits
from condensery.data.options import DigitsOptions
from condensery.data.realdata import load_raw
from condensery.models import embed
from condensery.training import train_classifier
from pydantic import ValidationError

TINY = {"name": "convnet", "depth": 1, "width": 4, "norm": "instancenorm"}


def tiny_ctx(tmp_path, compile: str, iterations: int = 10) -> RunContext:
    data = RealData.from_raw("digits", load_raw("digits", Digits(DigitsOptions(cache=False))), 0.1, True)
    runtime = Runtime(RuntimeOptions(cpu=True, compile=compile), seed=0, announce=False)
    task = Task("digits", data.num_classes, data.class_names, data.image_shape, data.mean, data.std, dict(TINY))
    recipe = {"synthesizer": {"ipc": 1, "iterations": iterations}}
    return RunContext(task, data, runtime, get_registry(), tmp_path, recipe)


def test_the_option_is_typed_and_reads_yaml_booleans():
    assert RuntimeOptions().compile == "no"
    assert RuntimeOptions(compile=True).compile == "yes"  # YAML 1.1: a bare yes
    assert RuntimeOptions(compile=False).compile == "no"
    assert RuntimeOptions(compile="auto").compile == "auto"
    with pytest.raises(ValidationError):
        RuntimeOptions(compile="sometimes")


def test_off_and_auto_below_the_threshold_are_the_very_eager_calls():
    net = torch.nn.Linear(2, 2)
    assert Compiler("no").compiled(net) is net
    assert Compiler("auto").compiled(net, passes=AUTO_MIN_PASSES - 1) is net
    assert Compiler("auto").compiled(net) is net  # unknown length: eager
    x = torch.randn(3, 2)
    assert torch.equal(Compiler("no").compiled(net, embed)(x), embed(net, x))
    assert Compiler("auto").wanted(AUTO_MIN_PASSES) and Compiler("yes").wanted(None)


@pytest.mark.parametrize("passes, shape, compiled", [
    (1500, (256, 3, 32, 32), True),  # the CIFAR-10 CPU DM recipe's real chunks: 1.2e9 element-passes
    (300, (100, 3, 32, 32), True),  # a 300-epoch CIFAR-10 evaluation of IPC 10: 9.2e7
    (300, (100, 1, 8, 8), False),  # the same evaluation of the 8x8 digits: 1.9e6
    (200, (640, 1, 8, 8), False),  # the quickstart's DM-sized real batch: 8.2e6
])
def test_auto_compiles_where_passes_times_input_elements_reach_the_bar(monkeypatch, passes, shape, compiled):
    monkeypatch.setenv("CONDENSERY_COMPILE_BACKEND", "eager")  # what is chosen, not how fast
    net = torch.nn.Flatten()
    call = Compiler("auto").compiled(net, passes=passes)
    x = torch.zeros(shape)
    assert torch.equal(call(x), net(x))
    assert (call.chosen is not call.eager) == compiled == (passes * x.numel() >= AUTO_MIN_WORK)
    assert call.chosen is (call.compiled_call if compiled else call.eager)  # decided once, at the first call
    call(torch.zeros(1, 1))
    assert call.chosen is (call.compiled_call if compiled else call.eager)


def test_a_compiler_that_fails_falls_back_to_eager_with_one_warning_line(monkeypatch, capsys):
    def broken(*_a, **_k):
        raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found\n(more lines)")

    monkeypatch.setattr(torch, "compile", broken)
    net, x = torch.nn.Linear(2, 2), torch.randn(3, 2)
    compiler = Compiler("yes")
    for _ in range(3):
        assert torch.equal(compiler.compiled(net)(x), net(x))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Linear" in err[0] and "runs eager" in err[0] and "InvalidCxxCompiler" in err[0]


def test_a_graph_that_fails_at_its_first_call_runs_eager(monkeypatch, capsys):
    def failing(fn, **_k):
        def call(*_a, **_kw):
            raise torch._dynamo.exc.Unsupported("a step the compiler cannot trace")
        return call

    monkeypatch.setattr(torch, "compile", failing)
    net, x = torch.nn.Linear(2, 2), torch.randn(3, 2)
    compiler = Compiler("yes")
    f = compiler.compiled(net, embed)
    assert torch.equal(f(x), embed(net, x)) and torch.equal(f(x), embed(net, x))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Linear (embed)" in err[0]


def test_compile_on_sets_the_inductor_cache_under_condensery_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CONDENSERY_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    Compiler("yes")
    import os

    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")


@pytest.mark.slow
def test_fresh_networks_reuse_the_compiled_graph(tmp_path, one_thread):
    """A new random network every DM step: compiled once (by inductor), then reused; close to eager."""
    from condensery_matching.distribution import DistributionMatcher, DistributionOptions
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    ctx = tiny_ctx(tmp_path, "yes")
    matcher = DistributionMatcher(DistributionOptions(batch_real=8))
    matcher.prepare(ctx)
    images = ctx.data.train_x[:10].clone().requires_grad_(True)
    labels = torch.arange(10)

    def compiles() -> tuple[int, int]:
        return counters["stats"]["unique_graphs"], counters["frames"]["ok"]

    losses = []
    for step in range(2):  # the first steps compile (with and without grad; a remainder chunk)
        losses.append(matcher.loss(images, labels, step))
        losses[-1].backward()
    first = compiles()
    assert first[0] >= 1
    for step in range(2, 5):  # each a fresh random network: no new graph
        matcher.loss(images, labels, step).backward()
    assert compiles() == first, "a fresh DM network recompiled"
    assert not ctx.runtime.compiler.failed
    eager = tiny_ctx(tmp_path, "no")
    eager_matcher = DistributionMatcher(DistributionOptions(batch_real=8))
    eager_matcher.prepare(eager)
    assert torch.allclose(eager_matcher.loss(images, labels, 0), losses[0], rtol=1e-4, atol=1e-6)



def test_gradient_matching_krr_and_evaluation_reuse_the_graph_for_every_fresh_network(tmp_path, monkeypatch, one_thread):
    """Dynamo's guards, not code generation, decide recompiling: the ``eager`` backend keeps this quick."""
    from condensery_matching.gradient import GradientMatcher, GradientOptions
    from condensery_matching.krr import KRRMatcher, KRROptions
    from torch._dynamo.utils import counters

    monkeypatch.setenv("CONDENSERY_COMPILE_BACKEND", "eager")
    torch._dynamo.reset()
    counters.clear()
    ctx = tiny_ctx(tmp_path, "yes")
    images = ctx.data.train_x[:20].clone().requires_grad_(True)
    labels = torch.arange(10).repeat(2)
    gm = GradientMatcher(GradientOptions(batch_real=8, outer_loop=2, inner_loop=1, batch_train=10))
    krr = KRRMatcher(KRROptions(batch_real=4, num_models=2, width=4, resample_every=1))
    for matcher in (gm, krr):
        matcher.prepare(ctx)

    def steps(first: int, last: int) -> None:
        for step in range(first, last):
            for matcher in (gm, krr):
                matcher.loss(images, labels, step).backward()
                matcher.after_step(images, labels, step)

    steps(0, 4)  # two gradient-matching networks (a new one every outer_loop steps), KRR's draws
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 2
    steps(4, 10)  # three more networks each
    assert counters["stats"]["unique_graphs"] == graphs and not ctx.runtime.compiler.failed

    x, y = ctx.data.train_x[:40], ctx.data.train_y[:40]
    for run in range(3):  # a new evaluation network per run
        net = ctx.create_model()
        train_classifier(net, x, y, epochs=2, lr=0.01, generator=torch.Generator().manual_seed(run),
                         batch_size=20, compiled=ctx.runtime.compiled)
        if run == 0:
            after_first = counters["stats"]["unique_graphs"]
    assert counters["stats"]["unique_graphs"] == after_first, "a new evaluation network recompiled"
    assert not ctx.runtime.compiler.failed


def test_auto_leaves_the_quickstart_eager(tmp_path):
    """The quickstart's matcher and evaluation on 8x8 digits: below ``auto``'s bar of passes x input elements."""
    from condensery import get_registry, open_task

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"
    plan, ctx = open_task(recipe, get_registry(), overrides=["runtime.compile=auto"], needs_synthesizer=True,
                          run_dir=tmp_path, announce=False)
    assert ctx.runtime.options.compile == "auto"
    plan.matcher.prepare(ctx)
    net = plan.matcher._network(0)
    forward = plan.matcher.forward
    real = torch.zeros(plan.matcher.options.batch_real * ctx.task.num_classes, *ctx.task.image_shape)
    forward(real)
    assert getattr(forward, "chosen", forward) is getattr(forward, "eager", net)  # the matcher's passes: eager
    evaluator = ctx.recipe["evaluators"][0]
    ipc = ctx.recipe["synthesizer"]["ipc"]
    passes = evaluator["epochs"] * -(-ctx.task.num_classes * ipc // 256)
    train_call = ctx.runtime.compiled(net, passes=passes)
    train_call(torch.zeros(ctx.task.num_classes * ipc, *ctx.task.image_shape))
    assert getattr(train_call, "chosen", train_call) is getattr(train_call, "eager", net)
