"""The quickstart, bit for bit: refactoring must not change a set or a number.

A reduced quickstart (20 distillation steps, 2 networks x 10 epochs) gives exactly the set and
test accuracies recorded here, so a change that only moves code (a refactoring) can be seen
to change nothing. A change that moves it must be a deliberate change of method, measured and
written in docs/results.md, and then this fingerprint is updated with it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import safe_open

REPO_RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SET_SHA256 = "c44885b3a735ed32150c75ab3d92643b5dbc4d7d8033093cf46c252033875d26"
ACCURACIES = {"synthetic": [0.44568246603012085, 0.4540390074253082],
              "random": [0.3760445713996887, 0.44289693236351013]}


def test_reduced_quickstart_gives_the_recorded_set_and_accuracies(cli, tmp_path):
    out = tmp_path / "qs"
    res = cli("run", str(REPO_RECIPES / "quickstart.yaml"), "-o", str(out), "--quiet",
              "--set", "synthesizer.iterations=20", "--set", "evaluators.0.epochs=10",
              "--set", "evaluators.0.runs=2", "--set", "runtime.threads=1")
    assert res.code == 0, res.err
    digest = hashlib.sha256()
    with safe_open(str(out / "synthetic.safetensors"), "pt") as f:
        for key in sorted(f.keys()):
            digest.update(key.encode())
            digest.update(f.get_tensor(key).numpy().tobytes())
    assert digest.hexdigest() == SET_SHA256
    results = json.loads((out / "metrics.json").read_text())["results"]
    assert {r["set"]: r["values"] for r in results} == ACCURACIES
