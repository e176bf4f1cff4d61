"""The nested pool's adaptive subset loss (``prefix_sampling: adaptive``) and ``prefix_weighting``.

The selection rule on scripted and random distance histories (Hypothesis); the measure on a
tiny task picks the prefix whose distance moved most; frozen rows keep their pixels bit for
bit under SGD momentum and Adam; a stopped run resumes to the same selections and set; every
prefix of an adaptive pool is what ``generate --ipc k`` returns; weighting by size is the
sum of k times each term; the option values are checked in one line, exit 2.
"""

from __future__ import annotations

import json

import pytest
import torch
from condensery import SyntheticSet, get_registry, open_task
from condensery._engine.generate import generate_file
from condensery_matching.adaptive import (
    AdaptiveSelection,
    PrefixEmbedding,
    frozen_size,
    prefix_distances,
    select_size,
)
from condensery_matching.pool import draw_prefix_sizes, positions, prefix_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import Stop, write_recipe

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_doc(**synth) -> dict:
    """Three digit classes, a one-layer ConvNet, an adaptive pool of 4 per class over DM."""
    options = {"name": "multisize", "ipc": 4, "iterations": 12, "lr": 1.0, "prefix_sampling": "adaptive",
               "adaptive_period": 2, "matcher": {"name": "distribution", "batch_real": 8}, **synth}
    return {"name": "adaptive", "seed": 0, "data": {"name": "digits", "cache": False, "classes": [0, 1, 2]},
            "model": {"name": "convnet", "depth": 1, "width": 8, "norm": "instancenorm"},
            "synthesizer": options, "runtime": {"checkpoint_every": 3}}


def opened(run_dir=None, **synth):
    """The tiny task's plan and context; without ``run_dir`` nothing is checkpointed (no files)."""
    doc = tiny_doc(**synth)
    if run_dir is None:
        doc["runtime"]["checkpoint_every"] = 1000
    plan, ctx = open_task(doc, get_registry(), run_dir=run_dir, announce=False)
    plan.matcher.prepare(ctx)
    return plan, ctx


# -- the rule -----------------------------------------------------------------------------


def test_the_first_check_selects_one_then_the_size_whose_distance_moved_most():
    assert select_size(None, torch.tensor([5.0, 1.0, 0.0])) == 1
    assert select_size(torch.tensor([5.0, 4.0, 3.0]), torch.tensor([4.5, 1.0, 2.9])) == 2  # |change| 0.5, 3, 0.1
    assert select_size(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, 3.0, -1.0])) == 2  # a tie: the smaller size
    assert select_size(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 4.0])) == 2  # a rise counts as a drop does


def test_frozen_is_the_largest_earlier_selection_below_the_current_one():
    assert frozen_size([1]) == 0
    assert frozen_size([1, 3]) == 1
    assert frozen_size([1, 3, 2]) == 1
    assert frozen_size([1, 3, 2, 3]) == 2
    assert frozen_size([1, 3, 2, 1]) == 0  # nothing earlier is smaller than 1
    assert frozen_size([2, 5, 9, 4]) == 2


def scripted(history: list[torch.Tensor]):
    """A measure that returns the next distances of ``history`` at each check."""
    calls = iter(history)
    return lambda images, labels: next(calls)


histories = st.integers(2, 8).flatmap(lambda k: st.lists(
    st.lists(st.floats(0, 100, allow_nan=False, width=32), min_size=k - 1, max_size=k - 1),
    min_size=1, max_size=8).map(lambda rows: (k, rows)))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(histories, st.integers(1, 4), st.data())
def test_selection_over_random_distance_histories(case, period, data):
    pool_ipc, rows = case
    history = [torch.tensor(r, dtype=torch.float64) for r in rows]
    sel = AdaptiveSelection(pool_ipc, period, scripted(history))
    frozen = []
    for step in range(len(history) * period):
        size = sel.size_at(step, None, None)
        assert size == sel.selected[step // period]
        frozen.append(sel.frozen())
    assert len(sel.selected) == len(history) and sel.selected[0] == 1
    for j in range(1, len(history)):
        change = (history[j] - history[j - 1]).abs()
        s = sel.selected[j]
        assert 1 <= s <= pool_ipc - 1
        assert bool((change <= change[s - 1]).all())  # the largest change ...
        assert bool((change[: s - 1] < change[s - 1]).all())  # ... and the smallest size among equals
    for j in range(len(history)):
        f, current, earlier = frozen[j * period], sel.selected[j], sel.selected[:j]
        assert f == 0 or (f in earlier and f < current)
        assert not [k for k in earlier if f < k < current]  # no larger earlier selection below the current one
    # a checkpoint taken at any step continues to the same selections
    cut = data.draw(st.integers(0, len(history) * period - 1))
    first = AdaptiveSelection(pool_ipc, period, scripted(history))
    for step in range(cut + 1):
        first.size_at(step, None, None)
    resumed = AdaptiveSelection(pool_ipc, period, scripted(history[len(first.selected):]))
    resumed.load_state_dict({k: v.clone() for k, v in first.state_dict().items()})
    for step in range(cut + 1, len(history) * period):
        resumed.size_at(step, None, None)
    assert resumed.selected == sel.selected


def test_a_pool_of_one_has_no_prefix_to_select():
    sel = AdaptiveSelection(1, 2, scripted([]))
    assert sel.size_at(0, None, None) is None and sel.frozen() == 0


def test_prefix_distances_are_the_class_averaged_squared_gaps_of_prefix_means():
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    feats, real = torch.randn(6, 3, generator=g), torch.randn(2, 3, generator=g)
    got = prefix_distances(feats, labels, positions(labels), real, 3)
    for k in (1, 2):
        gaps = [((feats[prefix_rows(labels, k)][labels[prefix_rows(labels, k)] == c].mean(0) - real[c]) ** 2).sum()
                for c in (0, 1)]
        assert torch.allclose(got[k - 1], torch.stack(gaps).double().mean())
    assert got.shape == (2,) and got.dtype == torch.float64


# -- the measure on a tiny task -----------------------------------------------------------


def test_the_prefix_whose_distance_moves_most_is_selected():
    plan, ctx = opened(ipc=5)
    gen = torch.Generator().manual_seed(1)
    y = torch.arange(3).repeat_interleave(5)
    x = torch.randn(15, *ctx.task.image_shape, generator=gen) * 3
    emb = PrefixEmbedding(ctx)

    def measure(images, labels):
        return emb.distances(images, labels, positions(labels), 5)

    sel = AdaptiveSelection(5, 2, measure)
    before = measure(x, y)
    assert sel.size_at(0, x, y) == 1
    moved = x.clone()
    third = positions(y) == 2  # only the third image of every class becomes a real image of its class
    moved[third] = torch.stack([ctx.data.train_x[ctx.data.class_batch_indices(c, 1, gen)][0] for c in range(3)])
    after = measure(moved, y)
    assert torch.equal(after[:2], before[:2])  # prefixes of 1 and 2 did not change at all
    assert sel.size_at(2, moved, y) == 3
    assert sel.frozen() == 1


# -- the loop: freezing, resuming, generating -----------------------------------------------


def record_images(monkeypatch, matcher, stop: int | None = None) -> list[torch.Tensor]:
    """Each step's images as the matcher sees them (before the step's update); Stop at ``stop``."""
    seen: list[torch.Tensor] = []
    losses = matcher.subset_losses

    def spy(images, labels, step, subsets):
        if step == stop:
            raise Stop
        seen.append(images.detach().clone())
        return losses(images, labels, step, subsets)

    monkeypatch.setattr(matcher, "subset_losses", spy)
    return seen


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_frozen_rows_keep_their_pixels_bit_for_bit(monkeypatch, optimizer):
    # selections 1, 3, 2, 3: frozen 0, 1, 1, 2 images per class, rows trained (with momentum) before
    history = [torch.tensor(v, dtype=torch.float64) for v in
               ([9.0, 9, 9], [9.0, 9, 1], [9.0, 1, 1], [9.0, 1, 9], [9.0, 1, 9])]
    monkeypatch.setattr(PrefixEmbedding, "distances", lambda self, images, labels, pos, k, it=iter(history): next(it))
    plan, ctx = opened(iterations=8, optimizer=optimizer, lr=0.5 if optimizer == "sgd" else 0.05)
    seen = record_images(monkeypatch, plan.matcher)
    final = plan.synthesizer.synthesize(ctx).images
    assert plan.synthesizer.selection.selected == [1, 3, 2, 3]
    seen.append(final)
    labels = torch.arange(3).repeat_interleave(4)
    for step in range(8):
        f = frozen_size(plan.synthesizer.selection.selected[: step // 2 + 1])
        rows = prefix_rows(labels, f)
        free = torch.ones(12, dtype=torch.bool)
        free[rows] = False
        assert torch.equal(seen[step + 1][rows], seen[step][rows]), step  # frozen: not a bit moved
        assert bool((seen[step + 1][free] != seen[step][free]).flatten(1).any(1).all()), step  # the rest learns
    assert f == 2


@pytest.mark.parametrize("stop", [5, 7])
def test_a_stopped_run_resumes_to_the_same_selections_and_set(tmp_path, monkeypatch, stop):
    plan, ctx = opened()
    clean = plan.synthesizer.synthesize(ctx)
    assert plan.synthesizer.selection.selected == [1, 1, 3, 3, 2, 2]  # this tiny task freezes in periods 2-5

    plan, ctx = opened(tmp_path / "run")
    record_images(monkeypatch, plan.matcher, stop=stop)
    with pytest.raises(Stop):
        plan.synthesizer.synthesize(ctx)
    monkeypatch.undo()
    plan, ctx = opened(tmp_path / "run")
    resumed = plan.synthesizer.synthesize(ctx)
    checkpointed = {5: 3, 7: 6}[stop]  # checkpoints after steps 2 and 5 (every 3); 6 is a check step, 3 is not
    assert [r["step"] for r in ctx.history if r.get("resumed")] == [checkpointed]
    assert plan.synthesizer.selection.selected == [1, 1, 3, 3, 2, 2]
    assert torch.equal(resumed.images, clean.images)
    assert resumed.metadata["prefix_selected"] == [1, 1, 3, 3, 2, 2]


POOL = """
name: adaptive-pool
seed: 0
data: {name: digits, cache: false, classes: [0, 1, 2]}
model: {name: convnet, depth: 1, width: 8, norm: instancenorm}
synthesizer:
  name: multisize
  ipc: 5
  iterations: 9
  lr: 0.1
  prefix_sampling: adaptive
  adaptive_period: 3
  prefix_weighting: size
  matcher: {name: distribution, batch_real: 8}
evaluators: [{name: hard-label, runs: 1, epochs: 1}]
runtime: {checkpoint_every: 1000}
"""


def test_every_prefix_of_an_adaptive_pool_is_what_generate_returns(cli, tmp_path):
    recipe = write_recipe(tmp_path / "pool.yaml", POOL)
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"), "--quiet")
    assert res.code == 0, res.err
    pool = SyntheticSet.load(tmp_path / "run" / "synthetic.safetensors")
    config = json.loads((tmp_path / "run" / "generator" / "config.json").read_text())
    assert config["prefix_sampling"] == "adaptive" and config["prefix_weighting"] == "size"
    assert config["prefix_selected"] == pool.metadata["prefix_selected"] and len(config["prefix_selected"]) == 3
    for k in range(1, 6):
        out = SyntheticSet.load(generate_file(tmp_path / "run" / "generator", k, tmp_path / f"k{k}.safetensors"))
        rows = torch.cat([(pool.labels == c).nonzero().flatten()[:k] for c in range(3)])
        assert torch.equal(out.images, pool.images[rows]) and torch.equal(out.labels, pool.labels[rows]), k


# -- weighting and options -----------------------------------------------------------------


@pytest.mark.parametrize("sampling", ["log-uniform", "adaptive"])
def test_size_weighting_is_the_sum_of_k_times_each_term(sampling):
    plan, ctx = opened(ipc=5, iterations=0, prefix_sampling=sampling, prefix_weighting="size")
    synth, m = plan.synthesizer, plan.matcher
    synth.synthesize(ctx)  # no step: it only sets up the run's seed and selection
    x, y = synth.initial_images(ctx)
    x.requires_grad_(True)
    state = m.gen.get_state()
    sizes = synth.prefix_sizes(x, y, 0)
    assert sizes == ([1] if sampling == "adaptive" else draw_prefix_sizes(0, 0, 5, 2, "log-uniform"))
    m.gen.set_state(state)
    weighted = synth.step_loss(m, x, y, 0, None)
    m.gen.set_state(state)
    terms = m.subset_losses(x, y, 0, [torch.arange(len(x))] + [prefix_rows(y, k) for k in sizes])
    assert torch.allclose(weighted, sum(k * t for k, t in zip([5, *sizes], terms)))
    synth.options.prefix_weighting = "none"
    m.gen.set_state(state)
    assert torch.equal(synth.step_loss(m, x, y, 0, None), torch.stack(terms).sum())  # the default: the plain sum


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), step=st.integers(0, 10_000), pool_ipc=st.integers(1, 60),
       samples=st.integers(0, 5))
def test_all_trains_every_prefix_every_step_as_drawing_every_size_would(seed, step, pool_ipc, samples):
    sizes = draw_prefix_sizes(seed, step, pool_ipc, samples, "all")
    assert sizes == list(range(1, pool_ipc))  # prefix_samples does not limit it
    assert sizes == draw_prefix_sizes(seed, step, pool_ipc, pool_ipc - 1, "log-uniform")


def test_all_adds_the_term_of_every_prefix_to_the_full_pool():
    plan, ctx = opened(ipc=4, iterations=0, prefix_sampling="all")
    synth, m = plan.synthesizer, plan.matcher
    synth.synthesize(ctx)
    x, y = synth.initial_images(ctx)
    x.requires_grad_(True)
    assert synth.prefix_sizes(x, y, 7) == [1, 2, 3]
    state = m.gen.get_state()
    loss = synth.step_loss(m, x, y, 7, None)
    m.gen.set_state(state)
    terms = m.subset_losses(x, y, 7, [torch.arange(len(x))] + [prefix_rows(y, k) for k in (1, 2, 3)])
    assert torch.equal(loss, torch.stack(terms).sum())
    (grad,) = torch.autograd.grad(loss, x)
    last = positions(y) == 3  # the last image of each class is in the full pool's term only
    assert grad[last].abs().sum() > 0 and grad[positions(y) == 0].abs().sum() > 0


@pytest.mark.parametrize("setting, needle", [
    ("synthesizer.prefix_sampling=adaptve", "prefix_sampling"),
    ("synthesizer.prefix_weighting=sizes", "prefix_weighting"),
    ("synthesizer.adaptive_period=0", "adaptive_period"),
    ("synthesizer.prefix_selection=adaptive", "prefix_selection"),
])
def test_a_bad_option_value_is_one_line_exit_2(cli, tmp_path, setting, needle):
    recipe = write_recipe(tmp_path / "pool.yaml", POOL)
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"), "--set", setting, "--quiet")
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert res.code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in res.err, res.err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("matcher", [
    {"name": "gradient", "batch_real": 8, "outer_loop": 1, "inner_loop": 1},
    {"name": "krr", "num_models": 1, "width": 16, "batch_real": 8},
])
def test_adaptive_selection_works_with_other_matchers(matcher):
    plan, ctx = opened(iterations=4, lr=0.01, matcher=matcher)
    synset = plan.synthesizer.synthesize(ctx)
    assert len(synset.metadata["prefix_selected"]) == 2 and synset.metadata["prefix_selected"][0] == 1
    assert bool(torch.isfinite(synset.images).all())
