"""Fingerprint of behaviour: set hashes and accuracies of the quickstart and every digits recipe.

Why: a refactoring must not change a set or a number. Run this before and after a change on
the same machine and environment and compare; a difference names the recipe that moved.
The budget is cut by recipe type (the same cut ``tests/test_digits_recipes.py`` uses), so the
whole fingerprint takes a few minutes on 2 CPU cores.

    python tools/fingerprint.py -o before.json
    ... change the code ...
    python tools/fingerprint.py -o after.json --compare before.json

Bits hold only within one environment (torch build, CPU capability, threads); the JSON
records it, and ``--compare`` refuses to compare across environments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"

EVAL_BUDGET = {"runs": 2, "epochs": 2}
SYNTH_BUDGET = {  # synthesizer name -> reduced options
    "pixel": {"iterations": 2},
    "multisize": {"iterations": 2},
    "seqmatch": {"iterations": 4, "warm_epochs": 1, "stage_experts": 1},
    "dwa": {"iterations": 2, "steps": 2, "teacher_epochs": 1},
    "mgdd": {"meta.steps": 1, "adapt.steps": 1},
}
MATCHER_BUDGET = {  # matcher name -> reduced options ("{tmp}" is the run's scratch folder)
    "gradient": {"outer_loop": 1, "inner_loop": 1},
    "krr": {"num_models": 1},
    "trajectory": {"syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1, "num_experts": 1,
                   "train_epochs": 2, "experts_dir": "{tmp}/experts"},
}
#: the reduced quickstart of tests/test_quickstart_identity.py
QUICKSTART_BUDGET = ("synthesizer.iterations=20", "evaluators.0.epochs=10", "evaluators.0.runs=2",
                     "runtime.threads=1")


def reduced(recipe: dict, tmp: Path) -> list[str]:
    """``--set`` arguments that cut ``recipe``'s budget to seconds."""
    sets: dict[str, object] = {}
    syn = recipe["synthesizer"]
    mode_keys = {"meta-train": "meta.steps", "adapt": "adapt.steps"}
    for key, value in SYNTH_BUDGET.get(syn["name"], {}).items():
        if syn["name"] == "mgdd" and key != mode_keys[syn.get("mode", "meta-train")]:
            continue
        sets[f"synthesizer.{key}"] = value
    matcher = syn.get("matcher") or {}
    for key, value in MATCHER_BUDGET.get(matcher.get("name"), {}).items():
        sets[f"synthesizer.matcher.{key}"] = str(value).format(tmp=tmp) if isinstance(value, str) else value
    for i, ev in enumerate(recipe.get("evaluators", [])):
        if ev["name"] in ("hard-label", "soft-label"):
            sets.update({f"evaluators.{i}.{k}": v for k, v in EVAL_BUDGET.items()})
    return [arg for k, v in sets.items() for arg in ("--set", f"{k}={v}")]


def set_digest(path: Path) -> str:
    """sha256 over the set file's tensors, key by key (metadata such as timings left out)."""
    from safetensors import safe_open

    digest = hashlib.sha256()
    with safe_open(str(path), "pt") as f:
        for key in sorted(f.keys()):
            digest.update(key.encode())
            digest.update(f.get_tensor(key).numpy().tobytes())
    return digest.hexdigest()


def environment() -> dict[str, object]:
    """What the bits depend on: the torch build, the CPU kernels it picks, numpy, Python."""
    import platform

    import numpy
    import torch

    return {"torch": torch.__version__, "torch_git": torch.version.git_version,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "numpy": numpy.__version__,
            "python": platform.python_version(), "machine": platform.machine()}


def run_one(args: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "condensery", "run", *args, "-o", str(out), "--quiet", "--set", "runtime.threads=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    metrics = json.loads((out / "metrics.json").read_text())
    return {"set": set_digest(out / "synthetic.safetensors"),
            "accuracies": {f"{r['evaluator']}/{r['model']}/{r['set']}": r["values"] for r in metrics["results"]}}


def fingerprint(only: list[str]) -> dict[str, dict]:
    """Run the reduced quickstart and every digits recipe; producers first for their consumers."""
    tmp = Path(tempfile.mkdtemp(prefix="condensery-fp-"))
    out: dict[str, dict] = {}
    if not only or "quickstart" in only:
        sets = [a for s in QUICKSTART_BUDGET for a in ("--set", s)]
        out["quickstart"] = run_one([str(RECIPES / "quickstart.yaml"), *sets], tmp / "quickstart")
    docs = {p: yaml.safe_load(p.read_text()) for p in sorted((RECIPES / "digits").glob("*.yaml"))}
    made = {f"runs/{doc['name']}": p for p, doc in docs.items()}
    for path, doc in docs.items():
        name = f"digits/{path.stem}"
        if only and name not in only:
            continue
        extra: list[str] = []
        generator = doc["synthesizer"].get("generator")
        if generator is not None:
            producer = made[str(Path(generator).parent)]
            run_dir = tmp / f"{name}-producer"
            run_one([str(producer), *reduced(docs[producer], tmp)], run_dir)
            extra = ["--set", f"synthesizer.generator={run_dir / Path(generator).name}"]
        out[name] = run_one([str(path), *reduced(doc, tmp), *extra], tmp / name)
        print(f"{name}: {out[name].get('set', out[name].get('error'))}", file=sys.stderr)
    return out


def compare(now: dict, before: dict) -> int:
    if now["environment"] != before["environment"]:
        print(f"environments differ: {before['environment']} vs {now['environment']}; bits are not comparable")
        return 2
    moved = [k for k in before["recipes"] if before["recipes"][k] != now["recipes"].get(k)]
    for k in moved:
        print(f"MOVED {k}: {before['recipes'][k]} -> {now['recipes'].get(k)}")
    print(f"{len(before['recipes']) - len(moved)} of {len(before['recipes'])} identical")
    return 1 if moved else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", help="write the fingerprint JSON here")
    parser.add_argument("--compare", help="a fingerprint JSON of before the change")
    parser.add_argument("--only", nargs="*", default=[], help="recipe names (quickstart, digits/dc-ipc1, ...)")
    args = parser.parse_args()
    result = {"environment": environment(), "recipes": fingerprint(args.only)}
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    return compare(result, json.loads(Path(args.compare).read_text())) if args.compare else 0


if __name__ == "__main__":
    sys.exit(main())
