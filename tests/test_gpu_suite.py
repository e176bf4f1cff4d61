"""tools/gpu_suite.py: the one-call device script decides what fits and never cuts silently.

The full CPU dry run (``python tools/gpu_suite.py run --dry-run``) takes minutes and is run by
hand (BENCHMARKS.md); these check its decisions on their own.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", REPO / "tools" / "gpu_suite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dm_is_skipped_with_its_reason_when_nothing_fits(tmp_path):
    suite = _suite()
    rows = [{"method": "dm", "ipc": 10, "mixed_precision": "no", "seconds_per_step": 0.02}]
    out = suite.dm_paper(tmp_path, tmp_path, rows, dry_run=False, deadline=time.time() + 30)
    assert "skipped" in out and "left" in out["skipped"]
    out = suite.dm_paper(tmp_path, None, rows, dry_run=False, deadline=time.time() + 3600)
    assert "skipped" in out  # no data unpacked


def test_dm_takes_the_iterations_that_fit_and_at_most_the_papers(tmp_path, monkeypatch):
    suite = _suite()
    calls = []
    monkeypatch.setattr(suite.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or type("P", (), {
        "returncode": 0, "stderr": ""})())
    rows = [{"method": "dm", "ipc": 10, "mixed_precision": "no", "seconds_per_step": 0.1}]
    out = suite.dm_paper(tmp_path, tmp_path, rows, dry_run=False, deadline=time.time() + 90 + 115)
    assert 900 <= out["iterations"] <= 1000  # 115 s left after the evaluation reserve, 0.1 s a step, 15 % margin
    assert f"synthesizer.iterations={out['iterations']}" in calls[0]
    fast = [{**rows[0], "seconds_per_step": 1e-6}]
    assert suite.dm_paper(tmp_path, tmp_path, fast, False, time.time() + 1000)["iterations"] == suite.DM_PAPER_ITERATIONS


def test_only_missing_distributions_are_installed(tmp_path, monkeypatch):
    suite = _suite()
    monkeypatch.setattr(suite, "WHEELS", tmp_path)
    (tmp_path / "pluggy-1.6.0-py3-none-any.whl").write_bytes(b"")  # installed here
    (tmp_path / "no_such_dist_xyz-1.0-py3-none-any.whl").write_bytes(b"")
    report = suite.install(dry_run=True)
    assert report["wheels_installed"] == ["no_such_dist_xyz-1.0-py3-none-any.whl"]
    assert report["condensery"] is True


def test_compiled_rows_stage_runs_each_mode_or_says_why_not(tmp_path, monkeypatch):
    suite = _suite()
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return type("P", (), {"returncode": 0, "stderr": "", "stdout": '[{"method": "dm", "compile": "yes"}]'})()

    monkeypatch.setattr(suite.subprocess, "run", fake_run)
    out = suite.compile_bench(tmp_path, dry_run=False, deadline=time.time() + 600)
    modes = [c[c.index("--compile-mode") + 1] for c in calls]
    assert modes == ["default", "reduce-overhead"] and all("--compile" in c for c in calls)
    assert len(out["rows"]) == 2 and out["modes"]["reduce-overhead"]["code"] == 0
    late = suite.compile_bench(tmp_path, dry_run=False, deadline=time.time() + 10)
    assert all("skipped" in m for m in late["modes"].values()) and not late["rows"]
