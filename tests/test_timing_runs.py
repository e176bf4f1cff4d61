"""Timing without workarounds: wall time per logged step, synthesis-only runs, progress in logs."""

from __future__ import annotations

import json


def test_no_eval_stops_after_the_set_and_a_later_run_evaluates_it(cli, tiny_recipe, tmp_path):
    out = tmp_path / "run"
    res = cli("run", str(tiny_recipe), "-o", str(out), "--no-eval")
    assert res.code == 0, res.err
    assert (out / "synthetic.safetensors").is_file() and (out / "grid.png").is_file()
    assert not (out / "metrics.json").exists()  # unevaluated: nothing claims results
    assert "synthesis only (--no-eval)" in res.err

    rows = [json.loads(line) for line in (out / "logs" / "steps.jsonl").read_text().splitlines()]
    assert all(r["time_s"] >= 0 for r in rows)
    assert rows[1]["step_s"] > 0 and "step_s" not in rows[0]  # mean wall seconds per step since the last row
    assert rows[1]["time_s"] >= rows[0]["time_s"]

    again = cli("run", str(tiny_recipe), "-o", str(out))  # the same recipe: evaluates the saved set
    assert again.code == 0, again.err
    assert "reusing the finished set" in again.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reused"] == ["synthesize"] and metrics["comparisons"]


def test_progress_is_a_plain_line_in_logs_when_output_is_not_a_terminal(cli, tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("CONDENSERY_PROGRESS_EVERY", "0")  # every step, to see it (default: at most every 30 s)
    res = cli("run", str(tiny_recipe), "-o", str(tmp_path / "run"), "--no-eval")
    assert res.code == 0, res.err
    lines = [ln for ln in res.err.splitlines() if "steps/s" in ln]
    assert len(lines) == 20  # the tiny recipe's 20 iterations, one line each at interval 0
    assert lines[-1].strip().startswith("distil") and "20/20 steps" in lines[-1]
    assert "synthesize loss" in lines[-1]
    assert "\r" not in res.err  # no bar redraws in a log


def test_quiet_prints_no_progress(cli, tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("CONDENSERY_PROGRESS_EVERY", "0")
    res = cli("run", str(tiny_recipe), "-o", str(tmp_path / "run"), "--no-eval", "--quiet")
    assert res.code == 0 and res.err == ""


def test_a_recipe_without_evaluators_is_a_finished_producer_run(cli, tiny_recipe, tmp_path):
    """``evaluators: []``: the set is saved, ``metrics.json`` has no results, a rerun reuses it."""
    import yaml

    doc = yaml.safe_load(tiny_recipe.read_text())
    doc["evaluators"] = []
    recipe = tmp_path / "producer.yaml"
    recipe.write_text(yaml.safe_dump(doc))
    out = tmp_path / "run"
    res = cli("run", str(recipe), "-o", str(out))
    assert res.code == 0, res.err
    assert "no evaluators: the set only" in res.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"] == [] and metrics["comparisons"] == []
    assert (out / "synthetic.safetensors").is_file()
    before = (out / "metrics.json").read_bytes()
    again = cli("run", str(recipe), "-o", str(out))
    assert again.code == 0 and "no evaluators" in again.out, again.err
    assert "already finished" in again.err and (out / "metrics.json").read_bytes() == before  # nothing redone


def test_evaluators_must_be_a_list(cli, tiny_recipe, tmp_path):
    import yaml

    doc = yaml.safe_load(tiny_recipe.read_text())
    doc["evaluators"] = {"name": "hard-label"}
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump(doc))
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"))
    assert res.code == 2 and "'evaluators' must be a list" in res.err and not (tmp_path / "run").exists()
