"""Drive the MGDD study of docs/results.md (item 3 of the MGDD issue) in small stages.

Stages (run each under the shared CPU lock; each is a few minutes on 2 CPU cores):

  python tools/mgdd_study.py adapt   --target cifar10     # (a) adapt to classes 5-9, ipc 10 set
  python tools/mgdd_study.py generate --target cifar10 --ipcs 1 7 23 50   # (a) other sizes, evaluated
  python tools/mgdd_study.py pixel   --target cifar10 --ipc 10 --factor 1  # (c) same wall time
  python tools/mgdd_study.py pixel   --target cifar10 --ipc 10 --factor 10 # (c) 10x the time
  python tools/mgdd_study.py table                                          # markdown rows

(b), the random subset, is evaluated next to every set by the evaluators themselves. The
pixel baseline's iterations are chosen from the adapted generator's measured wall time
(adaptation + generation, ``seconds.synthesize`` of the adapt run) divided by the measured
seconds per pixel iteration (a 5-iteration probe run), times ``factor``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RUNS = Path("runs/mgdd-study")
RECIPES = {"cifar10": "recipes/cifar10", "digits": "recipes/digits"}


def sh(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True)


def adapt(target: str) -> None:
    sh("condensery", "run", f"{RECIPES[target]}/mgdd-adapt.yaml", "-o", str(RUNS / f"{target}-adapt"), "--quiet")


def generate(target: str, ipcs: list[int]) -> None:
    gen_dir = RUNS / f"{target}-adapt" / "generator"
    for ipc in ipcs:
        out = RUNS / f"{target}-gen-ipc{ipc}.safetensors"
        t = time.perf_counter()
        sh("condensery", "generate", str(gen_dir), "--ipc", str(ipc), "--seed", "0", "-o", str(out))
        seconds = time.perf_counter() - t
        (RUNS / f"{target}-gen-ipc{ipc}.seconds").write_text(f"{seconds:.3f}\n")
        sh("condensery", "eval", str(out), "--recipe", f"{RECIPES[target]}/mgdd-adapt.yaml",
           "-o", str(RUNS / f"{target}-gen-ipc{ipc}-eval"), "--quiet")


def seconds_per_iteration(target: str, ipc: int) -> float:
    probe = RUNS / f"{target}-pixel-probe-ipc{ipc}"
    recipe = f"{RECIPES[target]}/mgdd-scratch-pixel.yaml"
    sh("condensery", "run", recipe, "-o", str(probe), "--quiet", "--force", "--set", f"synthesizer.ipc={ipc}",
       "--set", "synthesizer.iterations=5", "--set", "evaluators.0.runs=1", "--set", "evaluators.0.epochs=1")
    return json.loads((probe / "metrics.json").read_text())["seconds"]["synthesize"] / 5


def pixel(target: str, ipc: int, factor: float) -> None:
    adapt_metrics = json.loads((RUNS / f"{target}-adapt" / "metrics.json").read_text())
    budget = adapt_metrics["seconds"]["synthesize"] * factor
    per_it = seconds_per_iteration(target, ipc)
    iterations = max(1, round(budget / per_it))
    print(f"budget {budget:.1f} s at {per_it:.3f} s/iteration: {iterations} iterations", flush=True)
    sh("condensery", "run", f"{RECIPES[target]}/mgdd-scratch-pixel.yaml", "-o",
       str(RUNS / f"{target}-pixel-ipc{ipc}-x{factor:g}"), "--quiet",
       "--set", f"synthesizer.ipc={ipc}", "--set", f"synthesizer.iterations={iterations}")


def table() -> None:
    def acc(metrics: dict, role: str) -> str:
        for r in metrics["results"]:
            if r["set"] == role:
                return f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}"
        return "—"

    for path in sorted(RUNS.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        name = path.parent.name
        if "probe" in name:
            continue
        secs = m["seconds"].get("synthesize")
        if secs is None:  # an eval of a generated set: its generation time was measured apart
            f = RUNS / (name.replace("-eval", "") + ".seconds")
            secs = float(f.read_text()) if f.is_file() else None
        shown = f"{secs:.1f} s" if secs is not None else "—"
        print(f"| {name} | {m['ipc']} | {acc(m, 'synthetic')} | {acc(m, 'random')} | {shown} |")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["adapt", "generate", "pixel", "table"])
    p.add_argument("--target", choices=list(RECIPES), default="cifar10")
    p.add_argument("--ipcs", type=int, nargs="+", default=[1, 7, 23, 50])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--factor", type=float, default=1.0)
    a = p.parse_args(argv)
    RUNS.mkdir(parents=True, exist_ok=True)
    if a.stage == "adapt":
        adapt(a.target)
    elif a.stage == "generate":
        generate(a.target, a.ipcs)
    elif a.stage == "pixel":
        pixel(a.target, a.ipc, a.factor)
    else:
        table()


if __name__ == "__main__":
    sys.exit(main())
