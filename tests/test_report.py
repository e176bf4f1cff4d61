"""``condensery report`` renders fixture runs (metrics.json files the test writes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from condensery_eval.report import load_run, render, rows, seed_rows
from PIL import Image


def result(evaluator, model, set_, mean, std=0.01, **extra):
    return {"evaluator": evaluator, "model": model, "set": set_, "mean": mean, "std": std, "runs": 3,
            "values": [mean] * 3, **extra}


def write_run(root: Path, name: str, method: str, ipc: int, results: list[dict]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "recipe": name, "method": method, "dataset": "digits", "ipc": ipc, "num_images": 10 * ipc,
        "results": results, "seconds": {"total": 1.0}}))
    return run


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    return [
        write_run(tmp_path, "dm-1", "pixel", 1, [
            result("hard-label", "convnet", "synthetic", 0.8283, 0.0123),
            result("hard-label", "convnet", "random", 0.5641, 0.0321)]),
        write_run(tmp_path, "dm-10", "pixel", 10, [
            result("hard-label", "convnet", "synthetic", 0.9412),
            result("hard-label", "convnet", "random", 0.8810),
            result("ranking", "convnet", "synthetic", 0.9, arm="method", lrs=0.4321, ars=0.3456, hlr=0.05, ior=0.02),
            result("ranking", "convnet", "random", 0.88, arm="method"),
            result("ranking", "convnet", "synthetic", 0.7, arm="noaug"),
            result("ranking", "convnet", "random", 0.6, arm="noaug"),
            result("ranking", "convnet", "full", 0.97, 0.0, arm="full")]),
        write_run(tmp_path, "herding-1", "herding", 1, [
            result("hard-label", "convnet", "synthetic", 0.61),
            result("hard-label", "convnet", "random", 0.5641)]),
    ]


def test_report_table_and_plot(cli, runs, tmp_path):
    out = tmp_path / "rep" / "report.md"
    r = cli("report", *map(str, runs), "-o", str(out))
    assert r.code == 0, r.err
    md = out.read_text()
    assert ("| run | method | dataset | IPC | evaluator | model | synthetic (%) | random (%) | "
            "synthetic − random, 95 % CI (points) | LRS | ARS |") in md
    # results without a `paired` flag: Welch's interval, marked unpaired
    assert ("| `dm-1` | pixel | digits | 1 | hard-label | convnet | 82.83 ± 1.23 | 56.41 ± 3.21 | "
            "+26.42 [+26.42, +26.42] (unpaired) | – | – |") in md
    assert ("| `dm-10` | pixel | digits | 10 | ranking | convnet | 90.00 ± 1.00 | 88.00 ± 1.00 | "
            "+2.00 [+2.00, +2.00] (unpaired) | 43.21 | 34.56 |") in md
    assert "| ranking (noaug) | convnet | 70.00 ± 1.00 | 60.00 ± 1.00 | +10.00 [+10.00, +10.00] (unpaired) |" in md
    assert "Full training data (digits, convnet, hard labels): 97.00 ± 0.00 %" in md
    assert "| `herding-1` | herding | digits | 1 | hard-label |" in md
    assert "![accuracy against IPC](report.png)" in md
    png = out.with_suffix(".png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 400


def test_rows_pair_synthetic_with_random(runs):
    table = rows([load_run(p) for p in runs])
    dm10 = [t for t in table if t["run"].endswith("dm-10")]
    assert [(t["evaluator"], t["primary"]) for t in dm10] == [
        ("hard-label", True), ("ranking", True), ("ranking (noaug)", False)]
    assert all(t["random"] is not None for t in table)


def test_report_without_scores_has_no_ars_column(runs):
    md = render([load_run(runs[0])])
    assert "| LRS |" in md and "ARS" not in md


def test_report_errors_exit_2_with_one_line(cli, runs, tmp_path):
    for args, fragment in [
        ((str(tmp_path / "nowhere"),), "no metrics.json"),
        ((), "at least one run directory"),
    ]:
        r = cli("report", *args, "-o", str(tmp_path / "r.md"))
        assert r.code == 2 and fragment in r.err and r.err.strip().count("\n") == 0, r.err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.json").write_text("{not json")
    r = cli("report", str(bad), "-o", str(tmp_path / "r.md"))
    assert r.code == 2 and "not valid JSON" in r.err and r.err.strip().count("\n") == 0
    (bad / "metrics.json").write_text("[1, 2]")
    r = cli("report", str(bad), "-o", str(tmp_path / "r.md"))
    assert r.code == 2 and "results" in r.err


def seeded_run(root: Path, name: str, seed: int, syn: float, rnd: float, lr: float = 0.1, threads: int = 1,
               val: tuple[float, float] | None = None) -> Path:
    extra_s = {"val_mean": val[0]} if val else {}
    extra_r = {"val_mean": val[1]} if val else {}
    run = write_run(root, name, "pixel", 10, [result("hard-label", "convnet", "synthetic", syn, **extra_s),
                                              result("hard-label", "convnet", "random", rnd, **extra_r)])
    (run / "recipe.yaml").write_text(
        f"name: dc\nseed: {seed}\nsynthesizer: {{name: pixel, lr: {lr}}}\nruntime: {{threads: {threads}, cpu: true}}\n")
    return run


def test_report_pools_runs_that_differ_only_in_seed(tmp_path):
    a = seeded_run(tmp_path, "dc-s0", 0, 0.40, 0.30, val=(0.41, 0.29))
    b = seeded_run(tmp_path, "dc-s1", 1, 0.38, 0.26, threads=4, val=(0.39, 0.28))  # threads: speed only
    other_lr = seeded_run(tmp_path, "dc-lr", 2, 0.50, 0.30, lr=0.2)
    pooled = seed_rows([load_run(p) for p in (a, b, other_lr)])
    assert len(pooled) == 1
    row = pooled[0]
    assert row["seeds"] == [0, 1] and [Path(p).name for p in row["runs"]] == ["dc-s0", "dc-s1"]
    assert row["synthetic"] == pytest.approx((0.39, 0.0141421356), abs=1e-8)  # sample std over the seeds' means
    assert row["random"] == pytest.approx((0.28, 0.0282842712), abs=1e-8)
    assert row["difference"] == pytest.approx((0.11, 0.0141421356), abs=1e-8)  # paired per seed: 0.10, 0.12
    assert row["val_difference"] == pytest.approx((0.115, 0.0070710678), abs=1e-8)
    # networks agree within each seed here, so the bootstrap interval spans the two seeds' differences
    assert row["ci95"] == pytest.approx((0.10, 0.12))
    md = render([load_run(p) for p in (a, b, other_lr)])
    assert "## Over seeds" in md
    assert ("| `dc-s0`, `dc-s1` | 0, 1 | pixel | 10 | hard-label | convnet | 39.00 ± 1.41 | 28.00 ± 2.83 | "
            "+11.00 ± 1.41 | [+10.00, +12.00] | +11.50 ± 0.71 |") in md


def test_report_does_not_pool_without_distinct_seeds_or_recipes(tmp_path, runs):
    a = seeded_run(tmp_path, "x0", 0, 0.40, 0.30)
    same_seed = seeded_run(tmp_path, "x0-again", 0, 0.41, 0.31)
    assert seed_rows([load_run(a), load_run(same_seed)]) == []       # a repeat, not a second seed
    lone = seeded_run(tmp_path, "y1", 1, 0.40, 0.30, lr=0.3)
    assert seed_rows([load_run(a), load_run(lone)]) == []            # another recipe
    assert seed_rows([load_run(p) for p in runs]) == []              # no recipe.yaml: nothing to compare
    assert "Over seeds" not in render([load_run(p) for p in runs])
    c = seeded_run(tmp_path, "x1", 1, 0.42, 0.32)
    mc = load_run(c)
    mc["source"] = "elsewhere.safetensors"                            # an eval of another set
    assert seed_rows([load_run(a), mc]) == []


def test_report_pools_a_run_written_before_an_option_existed(tmp_path):
    """Old recipe.yaml files lack options added since; resolving them again fills the defaults."""
    body = ("name: dm\nseed: {seed}\ndata: {{name: digits}}\n"
            "synthesizer: {{name: pixel, ipc: 1, iterations: 5, matcher: {{name: distribution}}}}\n"
            "evaluators:\n- {{name: hard-label, epochs: 3{extra}}}\n")
    old = write_run(tmp_path, "dm-s0", "pixel", 1, [result("hard-label", "convnet", "synthetic", 0.8),
                                                    result("hard-label", "convnet", "random", 0.6)])
    (old / "recipe.yaml").write_text(body.format(seed=0, extra=""))
    new = write_run(tmp_path, "dm-s1", "pixel", 1, [result("hard-label", "convnet", "synthetic", 0.7),
                                                    result("hard-label", "convnet", "random", 0.5)])
    (new / "recipe.yaml").write_text(body.format(seed=1, extra=", momentum: 0.9"))
    pooled = seed_rows([load_run(old), load_run(new)])
    assert len(pooled) == 1 and pooled[0]["seeds"] == [0, 1]
    (new / "recipe.yaml").write_text(body.format(seed=1, extra=", random_draws: one"))
    assert seed_rows([load_run(old), load_run(new)]) == []
