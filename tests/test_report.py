"""``condensery report`` renders fixture runs (metrics.json files the test writes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from condensery_eval.report import load_run, render, rows
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
    assert "| run | method | dataset | IPC | evaluator | model | synthetic (%) | random (%) | LRS | ARS |" in md
    assert "| `dm-1` | pixel | digits | 1 | hard-label | convnet | 82.83 ± 1.23 | 56.41 ± 3.21 | – | – |" in md
    assert "| `dm-10` | pixel | digits | 10 | ranking | convnet | 90.00 ± 1.00 | 88.00 ± 1.00 | 43.21 | 34.56 |" in md
    assert "| ranking (noaug) | convnet | 70.00 ± 1.00 | 60.00 ± 1.00 |" in md
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
