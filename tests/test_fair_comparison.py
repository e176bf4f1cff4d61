"""Fair by default: paired arms, per-network random draws, the random arm's own lr, the
paired difference with its interval, and the ranking evaluator's cached random arm."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from condensery import SyntheticSet
from condensery.compare import comparisons, paired_interval, pooled_interval, welch_interval
from condensery.evaluation import random_like
from condensery_eval import protocol as protocol_module
from condensery_eval.protocol import TrainProtocol, random_arm_grid
from condensery_eval.ranking import RankingOptions
from condensery_eval.report import render

from .conftest import built, digits_recipe, task_context, write_recipe

RECIPE = digits_recipe('fairtest', width=8, epochs=2, synthesizer='{name: random, ipc: 2}')


@pytest.fixture(scope="module")
def ctx():
    return task_context(RECIPE)


@pytest.fixture(scope="module")
def synset(ctx):
    s = ctx.random_subset(2, stream="fair-synthetic")
    s.metadata["role"] = "synthetic"
    return s


def record_trainings(ctx, monkeypatch):
    """Capture, per training, the network's initial weights and the generator's state."""
    seen: list[dict] = []
    create = ctx.create_model
    train = protocol_module.train_classifier

    def creating(*args, **kwargs):
        model = create(*args, **kwargs)
        seen.append({"init": {k: v.clone() for k, v in model.state_dict().items()}})
        return model

    def training(model, x, y, *, generator, **kwargs):
        seen[-1]["stream"] = generator.get_state().clone()
        seen[-1]["images"] = x.clone()
        return train(model, x, y, generator=generator, **kwargs)

    monkeypatch.setattr(ctx, "create_model", creating)
    monkeypatch.setattr(protocol_module, "train_classifier", training)
    return seen


def same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


# -- pairing ------------------------------------------------------------------------------
def test_paired_arms_share_initialisation_batch_order_and_augmentation(ctx, synset, monkeypatch):
    seen = record_trainings(ctx, monkeypatch)
    opts = TrainProtocol(runs=2, epochs=1)
    assert opts.paired and opts.random_draws == "per-run"  # the defaults
    [syn] = built("evaluator", "hard-label", opts).evaluate(synset, ctx)
    [rnd] = built("evaluator", "hard-label", opts).evaluate(random_like(ctx, synset), ctx)
    assert syn.extra["paired"] and rnd.extra["paired"] and len(seen) == 4
    for r in range(2):
        s, q = seen[r], seen[2 + r]
        assert same_weights(s["init"], q["init"])  # network r of both arms starts from the same weights
        assert torch.equal(s["stream"], q["stream"])  # and draws the same batches and augmentations
        assert not torch.equal(s["images"], q["images"])  # on its own images
    assert not same_weights(seen[0]["init"], seen[1]["init"])  # networks differ from each other
    assert not torch.equal(seen[2]["images"], seen[3]["images"])  # each random network its own draw

    seen.clear()
    unpaired = TrainProtocol(runs=1, epochs=1, paired=False)
    built("evaluator", "hard-label", unpaired).evaluate(synset, ctx)
    built("evaluator", "hard-label", unpaired).evaluate(random_like(ctx, synset), ctx)
    assert not same_weights(seen[0]["init"], seen[1]["init"])


def test_learned_lr_gives_the_random_arm_its_own_choice_on_validation(ctx, synset):
    learned = SyntheticSet(synset.images, synset.labels, lr=0.004, metadata={"role": "synthetic"})
    rnd = random_like(ctx, learned)
    assert rnd.metadata["partner_lr"] == 0.004
    opts = TrainProtocol(runs=2, epochs=2)
    grid = random_arm_grid(opts, 0.004)
    assert grid == [0.002, 0.004, 0.008, 0.01]  # α × (0.5, 1, 2) and the fixed lr
    [syn] = built("evaluator", "hard-label", opts).evaluate(learned, ctx)
    [res] = built("evaluator", "hard-label", opts).evaluate(rnd, ctx)
    assert (syn.extra["lr"], syn.extra["lr_source"]) == (0.004, "learned")
    assert res.extra["lr_source"] == "validation (random-arm grid)" and res.extra["lr_grid"] == grid
    scores = res.extra["val_accuracy_by_lr"]
    assert sorted(scores) == grid and res.extra["lr"] == max(scores, key=scores.get)
    [c] = comparisons([syn, res])
    assert (c["lr_synthetic"], c["lr_synthetic_source"]) == (0.004, "learned")
    assert c["lr_random"] == res.extra["lr"] and c["lr_random_source"] == "validation (random-arm grid)"
    # a set without a learned lr: both arms at the fixed lr, nothing chosen
    [plain] = built("evaluator", "hard-label", opts).evaluate(random_like(ctx, synset), ctx)
    assert plain.extra["lr_source"] == "fixed" and plain.extra["lr"] == 0.01


# -- the interval -------------------------------------------------------------------------
def test_paired_t_interval_against_a_hand_computed_case():
    # d = (2, 4, 6) points: mean 4, sd 2, se 2/√3, t(0.975, df 2) = 4.302653
    mean, low, high = paired_interval([0.02, 0.04, 0.06])
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert mean == pytest.approx(0.04)
    assert (low, high) == (pytest.approx(0.04 - half, abs=1e-6), pytest.approx(0.04 + half, abs=1e-6))
    # Welch, equal variances and sizes: se √(2/3), df 4, t(0.975, 4) = 2.776445
    mean, low, high = welch_interval([1, 2, 3], [0, 1, 2])
    assert mean == 1 and high - mean == pytest.approx(2.776445 * math.sqrt(2 / 3), abs=1e-5)
    assert math.isnan(paired_interval([0.1])[1])  # one pair: no interval


def test_comparison_marks_an_interval_that_includes_zero():
    def res(role, values, paired=True):
        return {"evaluator": "hard-label", "model": "convnet", "set": role, "mean": sum(values) / len(values),
                "values": values, "paired": paired, "lr": 0.01, "lr_source": "fixed"}

    [clear] = comparisons([res("synthetic", [0.80, 0.82, 0.81]), res("random", [0.60, 0.61, 0.62])])
    assert clear["paired"] and clear["interval"] == "t over 3 paired networks" and not clear["includes_zero"]
    [noisy] = comparisons([res("synthetic", [0.80, 0.60, 0.70]), res("random", [0.70, 0.72, 0.68])])
    assert noisy["includes_zero"]
    diversity = [{**res(s, [0.2, 0.3]), "evaluator": "diversity", "metric": "cosine distance"} for s in ("synthetic", "random")]
    assert comparisons(diversity) == []  # not an accuracy: no "points" difference
    [old] = comparisons([res("synthetic", [0.8, 0.82], paired=False), res("random", [0.6, 0.61], paired=False)])
    assert not old["paired"] and old["interval"].startswith("Welch")
    metrics = {"recipe": "r", "method": "pixel", "dataset": "digits", "ipc": 1, "_path": "runs/x",
               "results": [res("synthetic", [0.80, 0.60, 0.70]), res("random", [0.70, 0.72, 0.68])]}
    assert "✗ includes 0" in render([metrics])
    metrics["results"][1]["random_draws"] = "one"  # one draw trained several times: the report says so
    assert "one random draw" in render([metrics])


def test_pooled_interval_covers_the_seeds():
    one = [([0.80, 0.81, 0.82], [0.60, 0.61, 0.62], True)]
    two = one + [([0.70, 0.71, 0.72], [0.60, 0.61, 0.62], True)]
    m1, l1, h1 = pooled_interval(one)
    m2, l2, h2 = pooled_interval(two)
    assert m1 == pytest.approx(0.20) and l1 == pytest.approx(0.20) and h1 == pytest.approx(0.20)  # constant pairs
    assert m2 == pytest.approx(0.15) and l2 == pytest.approx(0.10) and h2 == pytest.approx(0.20)  # seeds differ
    assert pooled_interval(two) == (m2, l2, h2)  # seeded: the same runs give the same interval


def test_run_and_report_give_the_paired_difference(tmp_path, cli):
    recipe = write_recipe(tmp_path / "r.yaml", RECIPE.replace("runs: 1", "runs: 3").replace("ipc: 2", "ipc: 1"))
    out = tmp_path / "run"
    assert cli("run", str(recipe), "-o", str(out)).code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    [c] = metrics["comparisons"]
    syn, rnd = (next(r for r in metrics["results"] if r["set"] == s) for s in ("synthetic", "random"))
    assert c["paired"] and c["networks"] == 3 and len(c["ci95"]) == 2
    assert c["difference"] == pytest.approx(syn["mean"] - rnd["mean"])
    assert c["ci95"][0] <= c["difference"] <= c["ci95"][1]
    assert len(rnd["drawn_indices"]) == 3 and len(rnd["val_values"]) == 3
    result = cli("report", str(out), "-o", str(tmp_path / "report.md"))
    assert result.code == 0, result.err
    assert "synthetic − random, 95 % CI" in (tmp_path / "report.md").read_text()


# -- the ranking evaluator's cached random arm ----------------------------------------------
def save_teacher(ctx, path: Path, seed: int) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = ctx.create_model()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def test_ranking_reuses_its_random_arm_until_the_teacher_changes(ctx, synset, tmp_path, monkeypatch):
    monkeypatch.setenv("CONDENSERY_CACHE", str(tmp_path / "cache"))
    teacher = tmp_path / "teacher.safetensors"
    save_teacher(ctx, teacher, 0)
    soft = SyntheticSet(synset.images, torch.nn.functional.one_hot(synset.labels, 10).float(),
                        metadata={"teacher": {"path": str(teacher), "model": dict(ctx.task.model)}})
    opts = RankingOptions(hard={"runs": 1, "epochs": 1}, soft={"runs": 1, "epochs": 1}, full_accuracy=0.9)
    seen = record_trainings(ctx, monkeypatch)

    def evaluate():
        seen.clear()
        out = built("evaluator", "ranking", opts).evaluate(soft, ctx)
        return {(r.extra.get("arm"), r.set): r for r in out}, len(seen)

    first, trained_first = evaluate()
    assert all("random_source" not in r.extra for (_, s), r in first.items() if s == "random")
    again, trained_again = evaluate()
    assert trained_again < trained_first  # the random arms were not trained again
    for key, r in first.items():
        if key[1] == "random":
            assert again[key].values == r.values and again[key].extra["random_source"] == "cache"
    save_teacher(ctx, teacher, 1)  # same path, another teacher: the cache no longer applies
    third, trained_third = evaluate()
    assert trained_third == trained_first
    assert all("random_source" not in r.extra for (_, s), r in third.items() if s == "random")


def test_a_validation_tie_goes_to_the_fixed_lr_then_the_partners_then_the_smallest():
    from condensery_eval.protocol import best_lr

    # the random arm of digits seqmatch-ipc10 at the test budget: a three-way tie at 96.50 %
    scores = {0.0033: 0.9650, 0.0066: 0.9580, 0.01: 0.9650, 0.0132: 0.9650}
    assert best_lr(scores, fixed=0.01, partner=0.0066) == 0.01
    assert best_lr({0.0033: 0.9, 0.0066: 0.9, 0.0132: 0.8}, fixed=0.01, partner=0.0066) == 0.0066
    assert best_lr({0.0033: 0.9, 0.0066: 0.9}, fixed=0.01, partner=None) == 0.0033
    assert best_lr({0.0033: 0.8, 0.0066: 0.9, 0.01: 0.85}, fixed=0.01) == 0.0066  # no tie: the best
