"""tools/bench_matchers.py: the JSON rows the benchmark tables are built from."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_matchers.py"


def test_rows_per_class_count_with_median_step_time_and_top_operators(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--quick", "--methods", "dm", "--ipcs", "1", "--classes", "2,3",
         "--precisions", "no", "--iterations", "3", "--profile", "4", "--device", "cpu", "-o", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert [r["classes"] for r in rows] == [2, 3] and all("error" not in r for r in rows)
    for r in rows:
        assert len(r["step_seconds"]) == 3 and r["seconds_per_step"] == round(statistics.median(r["step_seconds"]), 4)
        assert r["gflop_per_step"] > 0 and r["peak_memory_mb"] > 0 and r["fraction_of_matmul"] > 0
        ops = r["top_ops"]
        assert len(ops) == 4 and ops[0]["self_s"] >= ops[-1]["self_s"] and 0 < ops[0]["share"] <= 1
    # more classes, more real images per step: more FLOPs
    assert rows[1]["gflop_per_step"] > rows[0]["gflop_per_step"]


def test_mtt_unroll_length_can_be_set_and_its_cost_grows_with_it(tmp_path):
    """``--syn-steps`` replaces MTT's unroll (a side-by-side run that must fit in memory twice)."""
    rows = {}
    for steps in (1, 3):
        out = tmp_path / f"mtt{steps}.json"
        proc = subprocess.run(
            [sys.executable, str(TOOL), "--quick", "--methods", "mtt", "--ipcs", "1", "--precisions", "no",
             "--iterations", "1", "--syn-steps", str(steps), "--device", "cpu", "-o", str(out)],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        (rows[steps],) = json.loads(out.read_text())
    assert rows[1]["syn_steps"] == 1 and rows[3]["syn_steps"] == 3
    assert rows[3]["gflop_per_step"] > 2.5 * rows[1]["gflop_per_step"]


def test_plot_bench_tables_and_figure_of_cost_growth(tmp_path, capsys):
    sys.path.insert(0, str(TOOL.parent))
    import plot_bench

    rows = [{"method": m, "ipc": ipc, "classes": k, "mixed_precision": "no", "device": "cpu",
             "seconds_per_step": 0.1 * ipc * k * (2 if m == "dc" else 1), "peak_memory_mb": 100.0 + ipc + k}
            for m in ("dc", "dm") for ipc, k in ((1, 10), (10, 10), (50, 10), (10, 2), (10, 5))]
    rows.append({"method": "dm", "ipc": 50, "classes": 10, "mixed_precision": "bf16", "error": "skipped"})
    src = tmp_path / "rows.json"
    src.write_text(json.dumps(rows))
    png = tmp_path / "cost.png"
    plot_bench.main([str(src), "--png", str(png)])
    out = capsys.readouterr().out
    assert "| method | IPC 1 | IPC 10 | IPC 50 |" in out and "| method | classes 2 | classes 5 | classes 10 |" in out
    assert "| dc | 2 s, 111 MB | 20 s, 120 MB | 100 s, 160 MB |" in out
    assert png.stat().st_size > 10_000


def test_compile_flag_gives_an_eager_and_a_compiled_row_that_does_not_recompile(tmp_path):
    """``--compile``: each configuration eager, then compiled; dynamo's ``eager`` backend keeps it
    quick (guards and graphs as with inductor, no code generated)."""
    out = tmp_path / "rows.json"
    env = {**os.environ, "CONDENSERY_COMPILE_BACKEND": "eager"}
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--quick", "--methods", "dm", "--ipcs", "1", "--classes", "2",
         "--precisions", "no", "--iterations", "2", "--device", "cpu", "--compile", "-o", str(out)],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    eager, compiled = json.loads(out.read_text())
    assert (eager["compile"], compiled["compile"]) == ("no", "yes") and "recompiles" not in eager
    assert len(eager["warmup_seconds"]) == 1 and len(compiled["warmup_seconds"]) == 2
    assert compiled["recompiles"] == 0  # a fresh random network every step reuses the graph
    assert compiled["compile_seconds"] >= 0 and compiled["speedup"] > 0 and "break_even_steps" in compiled
    assert compiled["gflop_per_step"] == eager["gflop_per_step"]  # the same work


def test_break_even_is_the_compile_over_the_time_saved_per_step():
    sys.path.insert(0, str(TOOL.parent))
    import bench_matchers

    row = bench_matchers.against_eager({"seconds_per_step": 1.0}, {"seconds_per_step": 0.6, "compile_seconds": 20.0})
    assert row == {"speedup": 1.667, "break_even_steps": 50.0}
    slower = bench_matchers.against_eager({"seconds_per_step": 1.0}, {"seconds_per_step": 1.2, "compile_seconds": 5})
    assert slower["break_even_steps"] is None


def test_evaluation_epochs_eager_against_compiled(tmp_path):
    """``tools/bench_eval_compile.py``: one JSON row, both arms timed, the compile costed."""
    env = {**os.environ, "CONDENSERY_COMPILE_BACKEND": "eager"}
    proc = subprocess.run([sys.executable, str(TOOL.parent / "bench_eval_compile.py"), "--epochs", "2", "--width", "8"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert len(row["eager"]["epoch_seconds"]) == len(row["compiled"]["epoch_seconds"]) == 3
    assert not row["failed"] and row["speedup"] > 0 and row["max_abs_diff"] < 1e-4


def test_no_flops_leaves_out_the_counting_step(tmp_path):
    """``--no-flops``: the rows keep their timings and memory, without the FLOP-counting step's fields."""
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--quick", "--methods", "dm", "--ipcs", "1", "--classes", "2",
         "--precisions", "no", "--iterations", "2", "--device", "cpu", "--no-flops", "-o", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(out.read_text())
    assert len(row["step_seconds"]) == 2 and row["peak_memory_mb"] > 0
    assert "gflop_per_step" not in row and "fraction_of_matmul" not in row


def test_evaluation_one_arm_alone_with_its_own_memory_and_total(tmp_path):
    """``--arms compiled``: only the compiled arm trains (its process's peak RSS is its own)."""
    env = {**os.environ, "CONDENSERY_COMPILE_BACKEND": "eager"}
    proc = subprocess.run([sys.executable, str(TOOL.parent / "bench_eval_compile.py"), "--epochs", "2", "--width", "8",
                           "--arms", "compiled"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert "eager" not in row and "speedup" not in row and row["peak_memory_mb"] > 0
    assert len(row["compiled"]["epoch_seconds"]) == 3 and "compile_seconds" in row
    assert abs(row["compiled"]["total_seconds"] - sum(row["compiled"]["epoch_seconds"])) < 0.02
