"""Generators as a component kind: the nested pool (prefixes, extension, refinement), the folder
round trip through the registry, `condensery generate` on any type, and its one-line errors."""

from __future__ import annotations

import json
import types

import pytest
import torch
from condensery import SyntheticSet, UserError, hookimpl, open_task
from condensery._engine.generate import generate_file
from condensery._engine.plugins import get_registry
from condensery.generators import load_generator
from condensery_matching.pool import (
    MultisizeOptions,
    MultisizeSynthesizer,
    PoolGenerator,
    draw_prefix_sizes,
    prefix_rows,
)

from .conftest import write_recipe

POOL = """
name: pool
seed: 0
data: {name: digits, cache: false}
model: {name: convnet, depth: 2, width: 16, norm: instancenorm}
synthesizer:
  name: multisize
  ipc: 6
  iterations: 12
  lr: 1.0
  prefix_samples: 2
  matcher: {name: distribution, batch_real: 16}
evaluators: [{name: hard-label, runs: 1, epochs: 2}]
runtime: {checkpoint_every: 1000}
"""


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    """One finished multisize run (through the CLI's runner) shared by the tests below."""
    from condensery._engine.cli import main

    tmp = tmp_path_factory.mktemp("pool")
    recipe = write_recipe(tmp / "pool.yaml", POOL)
    try:
        main(["run", str(recipe), "-o", str(tmp / "run"), "--quiet"])
    except SystemExit as exc:
        assert not exc.code
    return tmp / "run"


def test_every_prefix_of_the_pool_is_what_generate_returns(pool_run, tmp_path):
    pool = SyntheticSet.load(pool_run / "synthetic.safetensors")
    assert len(pool) == 60 and pool.metadata["pool_ipc"] == 6
    for k in range(1, 7):
        out = SyntheticSet.load(generate_file(pool_run / "generator", k, tmp_path / f"k{k}.safetensors"))
        rows = torch.cat([(pool.labels == c).nonzero().flatten()[:k] for c in range(10)])
        assert torch.equal(out.images, pool.images[rows]), k  # bit-identical, class-ordered
        assert torch.equal(out.labels, pool.labels[rows])
        assert out.metadata["generator_type"] == "pool" and out.metadata["ipc"] == k
    assert torch.equal(prefix_rows(pool.labels, 6), torch.arange(60))


def test_pool_folder_round_trips_through_the_registry(pool_run):
    gen = load_generator(pool_run / "generator")
    assert isinstance(gen, PoolGenerator) and gen.pool_ipc == 6
    config = json.loads((pool_run / "generator" / "config.json").read_text())
    assert config["type"] == "pool" and config["recipe"]["matcher"]["name"] == "distribution"
    assert not gen.requires_data(6, gen.Options()) and gen.requires_data(7, gen.Options())
    assert gen.requires_data(3, gen.Options(refine_steps=2))
    info = get_registry().get("generator", "pool")
    assert info.obj is PoolGenerator and info.check() is PoolGenerator
    assert isinstance(info.options, str) and info.options_class is PoolGenerator.Options  # declared, like every kind
    assert gen.name == "pool"


def test_the_type_a_generator_is_saved_under_comes_from_its_registration(tmp_path):
    from condensery._engine.plugins import build_registry
    from condensery._engine.registry import PluginLoadError
    from condensery.generators import save_generator

    class Renamed(PoolGenerator):
        pass

    class Unregistered(PoolGenerator):
        pass

    def register_generators(register):
        register("renamed-pool", Renamed)

    plugin = types.ModuleType("renamed")
    plugin.register_generators = hookimpl(register_generators)
    registry = build_registry(extra_plugins=[("renamed", plugin)])
    images, labels = torch.zeros(4, 1, 2, 2), torch.arange(2).repeat_interleave(2)
    config = {"task": {"num_classes": 2, "class_names": ["a", "b"]}, "pool_ipc": 2}
    folder = save_generator(Renamed({}, images, labels), tmp_path / "gen", config, registry=registry)
    assert json.loads((folder / "config.json").read_text())["type"] == "renamed-pool"
    assert type(load_generator(folder, registry)) is Renamed
    assert save_generator(PoolGenerator({}, images, labels), tmp_path / "pool", config, registry=registry).is_dir()
    with pytest.raises(PluginLoadError, match="Unregistered is registered under no name"):
        save_generator(Unregistered({}, images, labels), tmp_path / "none", config, registry=registry)


def test_extension_past_the_pool_moves_only_the_new_images(pool_run, tmp_path):
    pool = SyntheticSet.load(pool_run / "synthetic.safetensors")
    path = generate_file(pool_run / "generator", 8, tmp_path / "k8.safetensors", seed=3,
                         options={"extend_iterations": 3})
    ext = SyntheticSet.load(path)
    assert len(ext) == 80 and ext.metadata["extended"] == 2
    for c in range(10):
        mine = ext.images[ext.labels == c]
        assert torch.equal(mine[:6], pool.images[pool.labels == c])  # the pool stays frozen
    again = SyntheticSet.load(generate_file(pool_run / "generator", 8, tmp_path / "k8b.safetensors", seed=3,
                                            options={"extend_iterations": 3}))
    assert torch.equal(ext.images, again.images)  # same seed, same set


def test_refine_steps_move_every_generated_image(pool_run, tmp_path):
    plain = SyntheticSet.load(generate_file(pool_run / "generator", 3, tmp_path / "a.safetensors"))
    refined = SyntheticSet.load(generate_file(pool_run / "generator", 3, tmp_path / "b.safetensors",
                                              options={"refine_steps": 2}))
    assert refined.images.shape == plain.images.shape and refined.metadata["refine_steps"] == 2
    moved = (refined.images - plain.images).abs().flatten(1).amax(1)
    assert bool((moved > 0).all())


def test_prefix_sizes_are_distinct_deterministic_and_in_range():
    for step in range(20):
        sizes = draw_prefix_sizes(0, step, 10, 3, "uniform")
        assert sizes == draw_prefix_sizes(0, step, 10, 3, "uniform")
        assert len(set(sizes)) == 3 and all(1 <= k <= 9 for k in sizes)
    assert draw_prefix_sizes(0, 0, 1, 2, "uniform") == []  # a pool of one has no proper prefix
    assert draw_prefix_sizes(0, 0, 3, 5, "uniform") == [1, 2]
    small = sum(draw_prefix_sizes(1, s, 20, 1, "log-uniform")[0] <= 3 for s in range(300))
    flat = sum(draw_prefix_sizes(1, s, 20, 1, "uniform")[0] <= 3 for s in range(300))
    assert small > 1.5 * flat  # log-uniform favours the fragile small prefixes


def test_nested_loss_lowers_the_loss_of_every_prefix_it_samples(tmp_path):
    doc = {"name": "n", "seed": 0, "data": {"name": "digits", "cache": False},
           "model": {"name": "convnet", "depth": 2, "width": 16, "norm": "instancenorm"},
           "synthesizer": {"name": "multisize", "ipc": 4, "iterations": 40, "lr": 1.0,
                           "matcher": {"name": "distribution", "batch_real": 16, "dsa": False}}}
    plan, ctx = open_task(doc, get_registry(), run_dir=None, announce=False)
    plan.matcher.prepare(ctx)
    synth = plan.synthesizer
    assert isinstance(synth, MultisizeSynthesizer) and isinstance(synth.options, MultisizeOptions)
    x0, y0 = synth.initial_images(ctx)

    def prefix_loss(images: torch.Tensor, k: int) -> float:
        rows = prefix_rows(y0, k)
        with torch.no_grad():  # held-out: fixed feature networks the synthesis never drew
            return sum(float(plan.matcher.subset_losses(images, y0, 10_000 + i, [rows])[0]) for i in range(4)) / 4

    before = {k: prefix_loss(x0, k) for k in range(1, 5)}
    after_set = synth.synthesize(ctx)
    after = {k: prefix_loss(after_set.images, k) for k in range(1, 5)}
    for k in range(1, 5):
        assert after[k] < 0.8 * before[k], (k, before, after)


def test_distribution_subset_losses_share_one_draw():
    doc = {"name": "d", "seed": 0, "data": {"name": "digits", "cache": False},
           "model": {"name": "convnet", "depth": 2, "width": 16},
           "synthesizer": {"name": "pixel", "ipc": 3, "matcher": {"name": "distribution", "batch_real": 8}}}
    plan, ctx = open_task(doc, get_registry(), announce=False)
    m = plan.matcher
    m.prepare(ctx)
    x, y = ctx.data.balanced_batch(3, ctx.generator("x"))
    state = m.gen.get_state()
    whole = m.loss(x, y, 0)
    m.gen.set_state(state)
    every, first = m.subset_losses(x, y, 0, [torch.arange(len(x)), prefix_rows(y, 1)])
    assert torch.equal(every, whole)  # the full subset is exactly the loss of the step
    assert float(first) != float(whole)


def test_generate_errors_are_one_line_exit_2(cli, pool_run, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(json.dumps({"type": "gan", "format": "condensery.generator/2"}))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((pool_run / "generator" / "config.json").read_text())
    (broken / "pool.safetensors").write_bytes(b"\x00" * 20)
    out = str(tmp_path / "x.safetensors")
    cases = {
        "does not exist": [str(tmp_path / "nowhere"), "--ipc", "2"],
        "no config.json": [str(tmp_path), "--ipc", "2"],
        "not valid JSON": [str(bad), "--ipc", "2"],
        "unknown generator 'gan'": [str(unknown), "--ipc", "2"],
        "not a readable .safetensors": [str(broken), "--ipc", "2"],
        "has no option 'labels'": [str(pool_run / "generator"), "--ipc", "2", "--option", "labels=krr"],
        "go through --option labels=VALUE": [str(pool_run / "generator"), "--ipc", "2", "--labels", "krr"],
        "option 'refine_steps'": [str(pool_run / "generator"), "--ipc", "2", "--option", "refine_steps=-1"],
        "KEY=VALUE": [str(pool_run / "generator"), "--ipc", "2", "--option", "refine_steps"],
        "--ipc": [str(pool_run / "generator"), "--ipc", "0"],
    }
    for needle, args in cases.items():
        res = cli("generate", *args, "-o", out)
        assert res.code == 2, (needle, res.err)
        assert needle in res.err and len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err, res.err
    for flag in ("--labels", "--initial", "--refine-steps"):  # a generator type declares its own options
        assert flag not in cli("generate", "--help").out
    with pytest.raises(UserError, match="lacks pool.safetensors"):
        (broken / "pool.safetensors").unlink()
        load_generator(broken)


REPO_RECIPES = __import__("pathlib").Path(__file__).resolve().parents[1] / "recipes" / "digits"
QUICK_EVAL = "evaluators=[{name: hard-label, runs: 1, epochs: 1}]"


@pytest.mark.slow
def test_digits_recipe_chains_run_end_to_end_with_no_files(cli, tmp_path):
    # mgdd: meta-train on digits 0-4, adapt to 5-9, generate any size (with least-squares labels)
    meta = cli("run", str(REPO_RECIPES / "mgdd-meta.yaml"), "-o", str(tmp_path / "meta"), "--quiet",
               "--set", "synthesizer.meta.steps=2", "--set", QUICK_EVAL)
    assert meta.code == 0, meta.err
    adapt = cli("run", str(REPO_RECIPES / "mgdd-adapt.yaml"), "-o", str(tmp_path / "adapt"), "--quiet",
                "--set", "synthesizer.adapt.steps=2", "--set", f"synthesizer.generator={tmp_path / 'meta' / 'generator'}",
                "--set", QUICK_EVAL)
    assert adapt.code == 0, adapt.err
    out = tmp_path / "seven.safetensors"
    gen = cli("generate", str(tmp_path / "adapt" / "generator"), "--ipc", "7", "--option", "labels=krr", "-o", str(out))
    assert gen.code == 0, gen.err
    synset = SyntheticSet.load(out)
    assert synset.images.shape == (35, 1, 8, 8) and synset.metadata["class_names"] == ["5", "6", "7", "8", "9"]
    assert synset.label_kind == "regression" and torch.equal(synset.hard_labels, torch.arange(5).repeat_interleave(7))
    # multisize: the pool recipe, then a prefix
    pool = cli("run", str(REPO_RECIPES.parent / "any-size" / "digits-pool-dm.yaml"), "-o", str(tmp_path / "pool"), "--quiet",
               "--set", "synthesizer.iterations=3", "--set", "synthesizer.ipc=4", "--set", QUICK_EVAL)
    assert pool.code == 0, pool.err
    two = cli("generate", str(tmp_path / "pool" / "generator"), "--ipc", "2", "-o", str(tmp_path / "two.safetensors"))
    assert two.code == 0 and len(SyntheticSet.load(tmp_path / "two.safetensors")) == 20, two.err
