"""studies/: the scripts behind docs/results.md start, and their bookkeeping is right.

A study's real stages distil and evaluate for minutes to hours, so none runs here; what is
checked is what would break silently after a refactor: each script starts (``--help``),
and the pieces that turn runs into tables (prefixes of a set, the markdown table, the
metrics a run leaves) do what the tables in docs/results.md assume. That they import only
public names is ``tests/test_public_imports.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from condensery import SyntheticSet

REPO = Path(__file__).resolve().parents[1]
STUDIES = REPO / "studies"
SCRIPTS = sorted(p.name for p in STUDIES.glob("*_study.py"))


def load(folder: Path, name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(folder))  # a study imports its sibling helpers, as when run as a script
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_study_starts(script):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "core"), str(REPO / "plugins"),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(STUDIES / script), "--help"], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_prefixes_keep_the_first_k_of_every_class_in_order(tmp_path, monkeypatch):
    study = load(STUDIES, "any_size_study", monkeypatch)
    assert study.prefix_rows([0, 0, 1, 0, 1, 1, 2], 2) == [0, 1, 2, 4, 6]
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    SyntheticSet(torch.arange(6.0).view(6, 1, 1, 1), labels, metadata={"ipc": 3}).save(tmp_path / "full.safetensors")
    study.prefixes(str(tmp_path / "full.safetensors"), str(tmp_path / "p{ipc}.safetensors"), [1, 2])
    two = SyntheticSet.load(tmp_path / "p2.safetensors")
    assert two.images.flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert two.metadata["ipc"] == 2 and two.metadata["prefix_of"].endswith("full.safetensors")


def test_the_any_size_table_merges_evaluations(tmp_path, monkeypatch):
    study = load(STUDIES, "any_size_study", monkeypatch)
    (tmp_path / "a.json").write_text(json.dumps({"sizes": {"10": {"pool": {"mean": 0.5, "std": 0.01}},
                                                           "1": {"pool": {"missing": "x"}}}}))
    (tmp_path / "b.json").write_text(json.dumps({"sizes": {"10": {"random": {"mean": 0.25, "std": 0.02}}}}))
    table = study.table([str(tmp_path / "a.json"), str(tmp_path / "b.json")], ["pool", "random"])
    assert table.splitlines() == ["| IPC | pool | random |", "|---|---|---|",
                                  "| 1 | – | – |", "| 10 | 50.00 ± 1.00 | 25.00 ± 2.00 |"]


def test_per_size_budgets_are_the_pools_cpu_seconds_per_step_times_its_steps(tmp_path, monkeypatch):
    study = load(STUDIES, "any_size_study", monkeypatch)
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "synth.json").write_text(json.dumps({"recipe": "pool.yaml", "overrides": ["synthesizer.iterations=600", "seed=1"],
                                                  "synthesizer": {"iterations": 600}}))
    cost = {"pool.yaml": 0.25, "pixel.yaml": 0.1}  # CPU seconds per step; start-up 5 s
    calls = []

    def fake_synth(recipe, out, overrides):
        calls.append((recipe, out, overrides))
        steps = int(next(o for o in overrides if o.startswith("synthesizer.iterations=")).split("=")[1])
        return {"cpu_seconds": 5.0 + cost[recipe] * steps, "seconds": 1.0}

    monkeypatch.setattr(study, "synth", fake_synth)
    record = study.per_size("pixel.yaml", str(pool), str(tmp_path / "out"), [10], 40, ["seed=1"])
    assert record["pool_step_cpu_seconds"] == pytest.approx(0.25) and record["pool_budget_cpu_seconds"] == 150.0
    assert record["sizes"]["10"]["full"]["iterations"] == 1500 and record["sizes"]["10"]["fifth"]["iterations"] == 300
    pool_probes = [o for r, _, o in calls if r == "pool.yaml"]
    assert pool_probes == [["seed=1", "synthesizer.iterations=10"], ["seed=1", "synthesizer.iterations=40"]]
    assert ["seed=1", "synthesizer.ipc=10", "synthesizer.iterations=1500"] in [o for _, _, o in calls]


def test_per_size_adds_sizes_and_shares_on_the_first_calls_budget_and_keeps_finished_runs(tmp_path, monkeypatch):
    study = load(STUDIES, "any_size_study", monkeypatch)
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "synth.json").write_text(json.dumps({"recipe": "pool.yaml", "overrides": ["synthesizer.iterations=600"],
                                                  "synthesizer": {"iterations": 600}}))
    cost = {"pool.yaml": 0.25, "pixel.yaml": 0.1}
    calls = []

    def fake_synth(recipe, out, overrides):
        calls.append((recipe, out))
        steps = int(next(o for o in overrides if o.startswith("synthesizer.iterations=")).split("=")[1])
        Path(out).mkdir(parents=True, exist_ok=True)
        record = {"overrides": overrides, "cpu_seconds": 5.0 + cost[recipe] * steps, "seconds": 1.0}
        (Path(out) / "synth.json").write_text(json.dumps(record))
        return record

    monkeypatch.setattr(study, "synth", fake_synth)
    out = str(tmp_path / "out")
    study.per_size("pixel.yaml", str(pool), out, [10], 40, [])
    cost["pool.yaml"] = 0.5  # a later probe would measure another pool step: the first one must be kept
    calls.clear()
    record = study.per_size("pixel.yaml", str(pool), out, [10, 2], 40, [], study.parse_shares(["fifth=0.2", "quarter=0.25"]))
    assert record["pool_step_cpu_seconds"] == pytest.approx(0.25)
    assert record["sizes"]["10"]["quarter"]["iterations"] == 375 and record["sizes"]["10"]["full"]["iterations"] == 1500
    assert record["sizes"]["2"]["fifth"]["iterations"] == 300
    assert [o for _, o in calls] == [f"{out}/ipc10-quarter", f"{out}/ipc2-probe-10", f"{out}/ipc2-probe-40",
                                     f"{out}/ipc2-fifth", f"{out}/ipc2-quarter"]  # ipc10-fifth was kept
    with pytest.raises(SystemExit, match="other overrides"):
        study.per_size("pixel.yaml", str(pool), out, [10], 40, ["seed=1"])
    with pytest.raises(SystemExit, match="budgeted at 0.25 CPU s per pool step, not 0.3"):
        study.per_size("pixel.yaml", str(pool), out, [10], 40, [], pool_step=0.3)
    with pytest.raises(SystemExit, match="NAME=FRACTION"):
        study.parse_shares(["quarter=4"])


def test_an_arm_whose_set_is_missing_is_not_recorded(tmp_path, monkeypatch, capsys):
    study = load(STUDIES, "any_size_study", monkeypatch)

    class Plan:
        evaluators = [("hard-label", None)]
        resolved = {"evaluators": [{"name": "hard-label"}]}

    monkeypatch.setattr("condensery.open_task", lambda *a, **k: (Plan(), None))
    out = tmp_path / "eval.json"
    table = study.evaluate("r.yaml", [10], [f"pool={tmp_path}/none-{{ipc}}.safetensors"], str(out), [])
    assert table["sizes"]["10"] == {} and "skipped" in capsys.readouterr().out


def test_compare_pools_the_seeds_difference_with_an_interval(tmp_path, monkeypatch):
    study = load(STUDIES, "any_size_study", monkeypatch)
    for seed, shift in ((0, 0.0), (1, 0.02)):
        cells = {"pool": {"values": [0.60 + shift, 0.62 + shift, 0.61 + shift]},
                 "full": {"values": [0.55 + shift, 0.56 + shift, 0.57 + shift]}}
        (tmp_path / f"s{seed}.json").write_text(json.dumps({"sizes": {"10": cells, "1": {"pool": {"missing": "x"}}}}))
    lines = study.compare_arms([str(tmp_path / "s0.json"), str(tmp_path / "s1.json")], "pool", ["full", "random"])
    lines = lines.splitlines()
    assert lines[0] == "| IPC | pool | minus full | minus random |" and len(lines) == 3  # size 1 has no values
    assert lines[2].startswith("| 10 | 62.00 (2 seeds, 6 nets) | +5.00 [") and lines[2].endswith("] (2) | – |")


def test_metrics_are_read_as_the_runs_write_them(tmp_path, monkeypatch):
    cli = load(STUDIES, "study_cli", monkeypatch)
    assert cli.read_metrics(tmp_path) is None
    (tmp_path / "metrics.json").write_text(json.dumps({"results": [
        {"set": "synthetic", "mean": 0.9, "std": 0.1}, {"set": "random", "mean": 0.5, "std": 0.2},
        {"set": "synthetic", "mean": 0.1, "std": 0.0}]}))  # a second evaluator's row is not the table's
    assert cli.accuracies(cli.read_metrics(tmp_path)) == {"synthetic": (0.9, 0.1), "random": (0.5, 0.2)}
    assert cli.sets("a=1", "b=2") == ["--set", "a=1", "--set", "b=2"]


def test_the_mgdd_table_marks_what_is_missing(tmp_path, monkeypatch, capsys):
    study = load(STUDIES, "mgdd_study", monkeypatch)
    study.main(["table", "--runs", str(tmp_path)])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| CIFAR-10") or line.startswith("| digits")]
    assert len(rows) == 10 and all("*missing*" in row for row in rows)


def test_a_benchmark_times_the_command_in_its_own_process(monkeypatch):
    bench = load(REPO / "tools", "bench_generators", monkeypatch)
    wall, peak_mb = bench.condensery("--version")
    assert wall > 0 and peak_mb > 1
    with pytest.raises(SystemExit, match="condensery no-such-command failed"):
        bench.condensery("no-such-command")


def test_the_prefix_terms_agreement_is_one_for_the_full_term_and_a_cosine_elsewhere(monkeypatch):
    study = load(STUDIES, "prefix_gradient_study", monkeypatch)
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert study.per_image_cosine(a, torch.tensor([[3.0, 0.0], [0.0, -1.0]])) == pytest.approx(0.0)  # +1 and -1
    result = study.measure("recipes/any-size/digits-pool-dm.yaml",
                           ["synthesizer.ipc=4", "synthesizer.iterations=0", "model.width=8", "runtime.threads=1",
                            "synthesizer.matcher.batch_real=8"], [1, 2, 4], nets=4)
    rows = {r["k"]: r for r in result["rows"]}
    assert rows[4]["cross_half"] == pytest.approx(rows[4]["split_half"])  # the full term against itself
    assert rows[4]["split_half_largest"] == pytest.approx(rows[4]["split_half"])
    for r in rows.values():  # the correction for attenuation, defined where both reliabilities are positive
        positive = r["split_half"] > 0 and r["split_half_largest"] > 0
        expected = r["cross_half"] / (r["split_half"] * r["split_half_largest"]) ** 0.5 if positive else None
        assert r["agreement"] == (pytest.approx(expected) if positive else None)
    assert all(-1 <= r["split_half"] <= 1 and -1 <= r["cross_half"] <= 1 for r in rows.values())
    assert rows[1]["none"] > rows[4]["none"]  # DM: a 1-image term's per-image gradient is the largest
    assert "agreement with k=4" in study.table(result).splitlines()[0]


@pytest.mark.parametrize("args", [["--share", "quarter=4"], []])
def test_a_study_mistake_is_one_line_and_exit_2(tmp_path, args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "core"), str(REPO / "plugins"),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(STUDIES / "any_size_study.py"), "per-size", "r.yaml", str(tmp_path / "none"),
                           str(tmp_path / "out"), "--sizes", "1", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("any_size_study: ")
