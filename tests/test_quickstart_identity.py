"""The quickstart, bit for bit where that is defined, and within a stated band everywhere.

A reduced quickstart (20 distillation steps, 2 networks x 10 epochs, one thread) runs once.

- **Exact** (a refactoring guard): in the environment that recorded it (``RECORDED_IN``: the
  torch build, the CPU kernel family and the thread count), the set's sha256 and the test
  accuracies are the recorded ones. Another torch build moves low-order bits (measured:
  2.14.1+cu130 vs 2.13.0+cu130, or 1 vs 2 threads, differ by at most 3.6e-7 per pixel), so
  elsewhere this check is skipped, naming what differs. A change that moves it here must be
  a deliberate change of method, measured in docs/results.md, and the record is updated.
- **Within tolerance** (always): every pixel within ``PIXEL_ATOL`` of the recorded set
  (``tests/data/quickstart_reduced_set.safetensors``; 280x the largest cross-build
  difference measured, far below what one step of a changed method moves: lr 0.01), the
  labels identical, every accuracy within ``ACCURACY_BAND`` of the recorded one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

HERE = Path(__file__).resolve().parent
REPO_RECIPES = HERE.parent / "recipes"
REFERENCE_SET = HERE / "data" / "quickstart_reduced_set.safetensors"

#: metrics.json ``environment`` fields the exact bits depend on, as recorded
RECORDED_IN = {"torch": "2.14.1+cu130", "torch_git": "5c4886908584029761b579af026dcfb627c84070",
               "cpu_capability": "AVX512", "machine": "x86_64", "threads": 1}
SET_SHA256 = "8fea26f8d481811ac97b5c9abe5c8b0bc92087fd8a21ab59f1155a83cfef3b9b"
ACCURACIES = {"synthetic": [0.44568246603012085, 0.4512534737586975],
              "random": [0.3760445713996887, 0.44289693236351013]}
PIXEL_ATOL = 1e-4
ACCURACY_BAND = 0.05


@pytest.fixture(scope="module")
def reduced_quickstart(tmp_path_factory):
    """One run shared by the checks below (a subprocess: a module-scoped fixture has no capsys)."""
    out = tmp_path_factory.mktemp("qs") / "run"
    res = subprocess.run([sys.executable, "-m", "condensery", "run", str(REPO_RECIPES / "quickstart.yaml"),
                          "-o", str(out), "--quiet", "--set", "synthesizer.iterations=20",
                          "--set", "evaluators.0.epochs=10", "--set", "evaluators.0.runs=2",
                          "--set", "runtime.threads=1"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return out


def tensors(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return {key: f.get_tensor(key) for key in sorted(f.keys())}


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for key, value in tensors(path).items():
        h.update(key.encode())
        h.update(value.numpy().tobytes())
    return h.hexdigest()


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def accuracies(out: Path) -> dict[str, list[float]]:
    return {r["set"]: r["values"] for r in metrics(out)["results"]}


def test_reduced_quickstart_is_bit_identical_in_the_recording_environment(reduced_quickstart):
    env = metrics(reduced_quickstart)["environment"]
    differs = {k: (v, env.get(k)) for k, v in RECORDED_IN.items() if env.get(k) != v}
    if differs:
        pytest.skip("exact bits hold only where they were recorded; here "
                    + ", ".join(f"{k} {now!r} (recorded {was!r})" for k, (was, now) in differs.items()))
    assert digest(reduced_quickstart / "synthetic.safetensors") == SET_SHA256
    assert accuracies(reduced_quickstart) == ACCURACIES


def test_reduced_quickstart_is_within_tolerance_everywhere(reduced_quickstart):
    got, want = tensors(reduced_quickstart / "synthetic.safetensors"), tensors(REFERENCE_SET)
    assert set(got) == set(want)
    assert got["labels"].equal(want["labels"])
    assert got["images"].shape == want["images"].shape
    worst = float((got["images"] - want["images"]).abs().max())
    assert worst <= PIXEL_ATOL, f"pixels moved by {worst:.2e} (band {PIXEL_ATOL})"
    now = accuracies(reduced_quickstart)
    assert set(now) == set(ACCURACIES)
    for arm, values in ACCURACIES.items():
        assert len(now[arm]) == len(values)
        for a, b in zip(now[arm], values):
            assert abs(a - b) <= ACCURACY_BAND, f"{arm}: accuracy {a:.4f} vs recorded {b:.4f} (band {ACCURACY_BAND})"


def test_the_recording_environment_is_what_metrics_json_records(reduced_quickstart):
    """The exact check keys on these fields: a run must record every one of them."""
    env = metrics(reduced_quickstart)["environment"]
    assert set(RECORDED_IN) <= set(env)
    assert env["threads"] == 1
