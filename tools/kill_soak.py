"""Kill soak: SIGKILL every command that writes, at random moments, rerun it, and check that
the final outputs are bit-identical to an uninterrupted run.

    python tools/kill_soak.py --kills 5 --out soak.json          # 5 kills per target
    python tools/kill_soak.py --methods pixel,dwa --kills 2       # a subset

Targets (tiny digits budgets, checkpoints every 2-5 steps). ``condensery run`` of every
synthesizer: ``pixel`` (DM), ``multisize`` (nested pool, a generator folder), ``seqmatch``
(trajectory matching, 2 stages), ``mgdd-meta`` (meta-training), ``mgdd-adapt`` (adapting the
meta-trained generator, which the tool trains first), ``dwa`` (teacher, recover, relabel) and
the selection baselines ``random``, ``herding``, ``kcenter``, ``kmeans``. And the other
commands, on the multisize reference run: ``generate`` (the pool generator at a larger ipc;
after each kill the target is absent or a whole set), ``eval`` (the set under its recipe,
resumed per evaluator) and ``export`` (PNG files and set.json compared byte for byte).
Each kill lands at a moment drawn (seeded) uniformly within the uninterrupted run's wall
time, so kills fall into data loading, synthesis, checkpoint writes and evaluation alike.
A kill that comes after the process already finished is not counted. The JSON lists, per
method, the kill times, where each rerun resumed, and whether set and metrics match.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from condensery import SyntheticSet

TINY_EVAL = "evaluators: [{name: hard-label, runs: 2, epochs: 20}]\nruntime: {threads: 1, checkpoint_every: %d}\n"

RECIPES = {
    "pixel": """
name: soak-pixel
seed: 0
data: {name: digits}
model: {name: convnet, depth: 2, width: 16}
synthesizer: {name: pixel, ipc: 2, iterations: 60, matcher: {name: distribution, batch_real: 16}}
""" + TINY_EVAL % 5,
    "multisize": """
name: soak-multisize
seed: 0
data: {name: digits}
model: {name: convnet, depth: 2, width: 16}
synthesizer: {name: multisize, ipc: 3, iterations: 40, prefix_samples: 1, matcher: {name: distribution, batch_real: 16}}
""" + TINY_EVAL % 5,
    "seqmatch": """
name: soak-seqmatch
seed: 0
data: {name: digits}
model: {name: convnet, depth: 2, width: 16}
synthesizer:
  name: seqmatch
  ipc: 2
  k: 2
  iterations: 12
  lr: 0.05
  optimizer: adam
  init: real
  warm_epochs: 4
  stage_experts: 1
  matcher: {name: trajectory, syn_steps: 3, expert_epochs: 1, max_start_epoch: 2, lr_init: 0.01, num_experts: 2,
            train_epochs: 3, experts_dir: EXPERTS}
""" + TINY_EVAL % 2,
    "mgdd-meta": """
name: soak-mgdd-meta
seed: 0
data: {name: digits, classes: [0, 1, 2, 3, 4]}
model: {name: convnet, depth: 2, width: 16}
synthesizer:
  name: mgdd
  mode: meta-train
  ipc: 2
  architecture:
    resolution: 8
    block_out_channels: [8, 16]
  meta:
    steps: 12
    batch: 2
    inner_steps: 1
    task_ipcs: [1, 2]
  matcher: {name: krr, dsa: false, num_models: 1, width: 32, resample_every: 1, batch_real: 16}
""" + TINY_EVAL % 2,
    "mgdd-adapt": """
name: soak-mgdd-adapt
seed: 0
data: {name: digits, classes: [5, 6, 7, 8, 9]}
model: {name: convnet, depth: 2, width: 16}
synthesizer:
  name: mgdd
  mode: adapt
  generator: GENERATOR
  ipc: 2
  adapt:
    steps: 12
    ipcs: [1, 2]
  matcher: {name: krr, dsa: false, num_models: 1, width: 32, resample_every: 1, batch_real: 16}
""" + TINY_EVAL % 2,
    "dwa": """
name: soak-dwa
seed: 0
data: {name: digits}
model: {name: convnet_bn, width: 16}
synthesizer:
  name: dwa
  ipc: 2
  teacher_model: {name: convnet_bn, width: 16}
  teacher_epochs: 3
  iterations: 12
  steps: 2
  lr: 0.1
  shift: 1
  init: real
  rho: 0.015
evaluators: [{name: soft-label, runs: 2, epochs: 5}]
runtime: {threads: 1, checkpoint_every: 2}
""",
    **{name: f"""
name: soak-{name}
seed: 0
data: {{name: digits}}
model: {{name: convnet, depth: 2, width: 16}}
synthesizer: {{name: {name}, ipc: 2}}
""" + TINY_EVAL % 5 for name in ("random", "herding", "kcenter", "kmeans")},
}
#: commands other than `run`, each on the multisize reference run (OUT: the output it writes)
COMMANDS = {
    "generate": ["generate", "REF/generator", "--ipc", "5", "--seed", "1", "-o", "OUT"],
    "eval": ["eval", "REF/synthetic.safetensors", "--recipe", "REF/recipe.yaml", "-o", "OUT",
             "--set", "evaluators.0.runs=3"],
    "export": ["export", "REF/synthetic.safetensors", "OUT"],
}


def command(recipe: Path | list[str], out: Path) -> list[str]:
    """``condensery run RECIPE -o OUT``, or another command (a COMMANDS entry) writing ``out``."""
    if isinstance(recipe, list):
        return [sys.executable, "-m", "condensery", *(a.replace("OUT", str(out)) for a in recipe)]
    return [sys.executable, "-m", "condensery", "run", str(recipe), "-o", str(out)]  # status lines say where it resumed


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_to_end(recipe: Path | list[str], out: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(command(recipe, out), capture_output=True, text=True, env=environment())
    if done.returncode != 0:
        raise SystemExit(f"{out.name}: the command failed ({done.stderr.strip().splitlines()[-1:]})")
    return time.perf_counter() - t0, done.stderr


def resume_points(err: str) -> list[str]:
    """Where a rerun picked up: a step, recovered batches (DWA) or the finished set (evaluation)."""
    points = [f"{m[0]}step {m[1]}" for m in re.findall(r"resuming .*?(?:at )?(stage \d+, )?step (\d+)", err)]
    points += [f"{m} batches" for m in re.findall(r"(\d+) of \d+ batches recovered", err)]
    points += ["set done" for _ in re.findall(r"reusing the finished set", err)]
    return points


def torn(out: Path) -> bool:
    """After a kill: whether ``out`` is a file that is not a whole set (what no kill may leave)."""
    if not out.is_file():
        return False
    try:
        SyntheticSet.load(out)
    except Exception:  # noqa: BLE001 -- any unreadable file is a torn one
        return True
    return False


def wait_for_checkpoint(proc: subprocess.Popen, folder: Path, after: float, limit: float) -> None:
    """Until a checkpoint under ``folder`` is newer than ``after`` (or the run ends, or ``limit`` s pass)."""
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        if any(p.stat().st_mtime > after for p in folder.glob("*.safetensors")):
            return
        time.sleep(0.02)


def killed_trial(recipe: Path | list[str], out: Path, span: float, rng: random.Random) -> dict:
    """One fresh run directory: SIGKILL the run at random moments until a rerun finishes.

    Half of the kills land uniformly in 5-95 % of the uninterrupted wall time (a resumed run:
    of half of it); the other half a random 0-1 s after a new checkpoint appears, so kills
    fall inside synthesis and right after checkpoint writes, not only in start-up.
    """
    times, resumed = [], []
    while True:
        started = time.time()
        proc = subprocess.Popen(command(recipe, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, env=environment())
        if rng.random() < 0.5:
            wait_for_checkpoint(proc, out / "checkpoints", started, span)
            at = rng.uniform(0.0, 1.0)
            mode = "after a checkpoint"
        else:
            at = rng.uniform(0.05, 0.95) * (span if not times else span / 2)
            mode = "uniform"
        try:
            _, err = proc.communicate(timeout=at)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
            times.append({"seconds": round(time.time() - started, 2), "mode": mode, "torn": torn(out)})
            resumed += resume_points(err)
            if len(times) < 3:
                continue
            _, err = run_to_end(recipe, out)  # three kills in one directory are enough
        if proc.returncode not in (0, -signal.SIGKILL):
            raise SystemExit(f"{out.name}: a rerun failed: {err.strip().splitlines()[-1:]}")
        resumed += resume_points(err)
        return {"kills": len(times), "killed_at": times, "resumed_at": resumed}


def same_files(a: Path, b: Path) -> dict:
    """Every file under two folders (or two files) byte for byte; ``source`` in set.json aside."""
    if a.is_file():
        sa, sb = SyntheticSet.load(a), SyntheticSet.load(b)
        same = torch.equal(sa.images, sb.images) and torch.equal(sa.labels, sb.labels) and sa.lr == sb.lr
        return {"set_identical": bool(same), "metrics_identical": True}
    if (a / "metrics.json").is_file():
        ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
        same = [r["values"] for r in ma["results"]] == [r["values"] for r in mb["results"]]
        return {"set_identical": True, "metrics_identical": bool(same)}
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    same = names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names if same else []:
        x, y = (a / name).read_bytes(), (b / name).read_bytes()
        if name.name == "set.json":
            x, y = (json.dumps({k: v for k, v in json.loads(t).items() if k != "source"}).encode() for t in (x, y))
        same = same and x == y
    return {"set_identical": bool(same), "metrics_identical": bool(same)}


def same_outputs(a: Path, b: Path) -> dict:
    sa, sb = SyntheticSet.load(a / "synthetic.safetensors"), SyntheticSet.load(b / "synthetic.safetensors")
    set_equal = torch.equal(sa.images, sb.images) and torch.equal(sa.labels, sb.labels) and sa.lr == sb.lr
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    values = [r["values"] for r in ma["results"]] == [r["values"] for r in mb["results"]]
    return {"set_identical": bool(set_equal), "metrics_identical": bool(values),
            "grid_png": (b / "grid.png").is_file()}


def soak(target, reference: Path, out_of, compare, span: float, kills: int, rng: random.Random) -> dict:
    """Kill ``target`` (a recipe or an argv) into fresh outputs until ``kills`` kills landed, each
    compared with ``reference``; at most 4 outputs per kill asked for (a run may end before a kill)."""
    trials: list[dict] = []
    while sum(t["kills"] for t in trials) < kills and len(trials) < 4 * kills:
        out = out_of(len(trials))
        trial = killed_trial(target, out, span, rng)
        trial.update(compare(reference, out))
        trials.append(trial)
    return {"uninterrupted_seconds": round(span, 2), "kills": sum(t["kills"] for t in trials),
            "identical": all(t["set_identical"] and t["metrics_identical"] for t in trials if t["kills"]),
            "trials": trials}


def soak_command(name: str, work: Path, kills: int, rng: random.Random) -> dict:
    """Kill ``condensery NAME`` (a COMMANDS entry) on the multisize reference run, as ``main`` kills runs."""
    ref = work / "multisize-ref"
    if not (ref / "metrics.json").is_file():
        recipe = work / "multisize.yaml"
        recipe.write_text(RECIPES["multisize"])
        run_to_end(recipe, ref)
    argv = [a.replace("REF", str(ref)) for a in COMMANDS[name]]
    suffix = ".safetensors" if name == "generate" else ""
    span, _ = run_to_end(argv, work / f"{name}-ref{suffix}")
    entry = soak(argv, work / f"{name}-ref{suffix}", lambda i: work / f"{name}-killed-{i}{suffix}", same_files,
                 span, kills, rng)
    trials = entry["trials"]
    print(f"{name:<11} {entry['kills']} kills in {len(trials)} targets, resumed at {[t['resumed_at'] for t in trials]}, "
          f"identical: {entry['identical']}, torn: {any(k['torn'] for t in trials for k in t['killed_at'])}", flush=True)
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=5, help="kills per method")
    ap.add_argument("--methods", default=",".join([*RECIPES, *COMMANDS]))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the JSON here (default: print)")
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="kill-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"seed": args.seed, "kills_per_method": args.kills, "methods": {}}
    generator = None
    for method in args.methods.split(","):
        if method in COMMANDS:
            report["methods"][method] = soak_command(method, work, args.kills, rng)
            continue
        text = RECIPES[method].replace("EXPERTS", str(work / "experts"))
        if method == "mgdd-adapt":
            if generator is None:
                meta = work / "meta-for-adapt.yaml"
                meta.write_text(RECIPES["mgdd-meta"])
                run_to_end(meta, work / "meta-for-adapt")
                generator = work / "meta-for-adapt" / "generator"
            text = text.replace("GENERATOR", str(generator))
        recipe = work / f"{method}.yaml"
        recipe.write_text(text)
        span, _ = run_to_end(recipe, work / f"{method}-ref")
        entry = soak(recipe, work / f"{method}-ref", lambda i, m=method: work / f"{m}-killed-{i}", same_outputs,
                     span, args.kills, rng)
        trials = entry["trials"]
        report["methods"][method] = entry
        print(f"{method:<11} {entry['kills']} kills in {len(trials)} directories, "
              f"resumed at {[t['resumed_at'] for t in trials]}, identical: {entry['identical']}", flush=True)
    report["all_intact"] = not any(k["torn"] for m in report["methods"].values() for t in m["trials"]
                                   for k in t["killed_at"])
    report["total_kills"] = sum(m["kills"] for m in report["methods"].values())
    report["all_identical"] = all(m["identical"] for m in report["methods"].values())
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text if not args.out else f"wrote {args.out}: {report['total_kills']} kills, all identical: {report['all_identical']}")
    sys.exit(0 if report["all_identical"] and report["all_intact"] else 1)


if __name__ == "__main__":
    main()
