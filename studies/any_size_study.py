"""The any-size study (docs/results.md, "Sets of any size"): pool prefixes vs per-size runs vs MGDD vs random.

Six subcommands, all through the public API (the command line, or names ``condensery``
exports):

``synth RECIPE OUT [--set K=V ...]``
    ``condensery run RECIPE -o OUT --no-eval --force`` in its own process: the recipe's
    synthesizer alone, so a generator-building synthesizer leaves ``OUT/generator`` and the
    set is ``OUT/synthetic.safetensors``; writes ``OUT/synth.json`` (seconds of synthesis as
    the run measured them, ``seconds_synthesize``; the process's peak resident memory; the
    resolved synthesizer section).

``per-size RECIPE POOL_DIR OUTROOT --sizes 1 7 ...``
    the per-size baseline (b): for every size, pixel optimisation with the recipe's matcher at
    shares of the pool run's CPU time (``--share NAME=FRACTION``; default 1/5, five sizes = one
    pool run, and all of it).
    The CPU seconds per step of the pool and of every size come from two probes each
    (``--probe`` steps and a quarter of that, differenced), so each run gets the stated *CPU
    time* whatever else the machine runs; ``OUTROOT/ipc{k}-{share}``. Additive and resumable:
    sizes and shares added later keep the first call's pool step (or ``--pool-step-cpu``), and
    finished runs are kept.

``prefixes SET OUT_WITH_{ipc} --sizes 1 7 ...``
    the first k images per class of an ordinary (not nested) set, e.g. the per-size run at the
    largest size: what "subset degradation" means, next to the nested pool's prefixes.

``evaluate RECIPE --sizes 1 7 ... --arm NAME=PATH_WITH_{ipc} ... -o OUT.json``
    judges every arm's set at every size under the recipe's first evaluator, next to the
    random real subset of that size under the same protocol (trained once per size and
    label kind, drawn afresh per network with ``random_draws: per-run``). An arm whose sets
    carry least-squares labels (``label_solver``) is compared with the random subset given
    *its own* least-squares labels. Writes mean ± std per arm and the difference to random.

``compare OUT.json ... --arm A --against B C ...``
    A minus each of B, C, ... per size, one ``evaluate`` output per distillation seed, pooled
    over the seeds with a 95 % bootstrap interval.

``table OUT.json ... [--arms a b ...]``
    the markdown table (rows: sizes; columns: arms, then the random subsets) of one or more
    ``evaluate`` outputs, accuracies in % as mean ± std over the networks.

Timing: run one heavy job per core (``OMP_NUM_THREADS=1``) and compare seconds side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def synth(recipe: str, out: str, overrides: list[str]) -> dict[str, Any]:
    """Synthesis alone, in a fresh process (its memory is its own); ``OUT/synth.json``."""
    import yaml
    from condensery import SyntheticSet

    command = [sys.executable, "-m", "condensery", "run", recipe, "-o", out, "--no-eval", "--force", "--quiet",
               *(a for o in ["runtime.threads=1", *overrides] for a in ("--set", o))]
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest of all children so far
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        print(f"any_size_study: condensery run {recipe} failed (exit {child.returncode}); its error is printed above",
              file=sys.stderr)
        raise SystemExit(child.returncode)  # the child's own code: 2 for a user's mistake, 1 for a defect
    seconds = float(SyntheticSet.load(Path(out) / "synthetic.safetensors").metadata["seconds_synthesize"])
    resolved = yaml.safe_load((Path(out) / "recipe.yaml").read_text())
    record = {"recipe": recipe, "overrides": overrides, "seconds": round(seconds, 3),
              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),  # the whole process, start-up included
              "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
              "synthesizer": resolved["synthesizer"]}
    (Path(out) / "synth.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"out": out, "seconds": record["seconds"]}))
    return record


def step_cpu(recipe: str, out: str, overrides: list[str], short: int, long: int) -> float:
    """CPU seconds of one synthesis step: two runs of ``short`` and ``long`` steps, differenced.

    CPU time, not wall time, because the other jobs on a shared machine change the wall time of a
    step (seen: the same pool took 284 s and 682 s) but hardly its CPU time; the difference of two
    lengths cancels the start-up (imports, data, the first network).
    """
    runs = [synth(recipe, f"{out}-{n}", [*overrides, f"synthesizer.iterations={n}"])["cpu_seconds"] for n in (short, long)]
    return (runs[1] - runs[0]) / (long - short)


SHARES = {"fifth": 0.2, "full": 1.0}


def parse_shares(specs: list[str] | None) -> dict[str, float]:
    """``NAME=FRACTION`` specs (``quarter=0.25``) as a mapping; none given: 1/5 and all of the budget."""
    if not specs:
        return dict(SHARES)
    shares = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not sep or not name or not 0 < fraction <= 1:
            raise SystemExit(f"--share {spec!r}: expected NAME=FRACTION with 0 < FRACTION <= 1, e.g. quarter=0.25")
        shares[name] = fraction
    return shares


def _finished(out: str, overrides: list[str]) -> dict[str, Any] | None:
    """The record of a run already done with exactly these overrides; a different one in its place stops the study."""
    path = Path(out) / "synth.json"
    if not path.is_file():
        return None
    done = json.loads(path.read_text())
    if done.get("overrides") != overrides:
        raise SystemExit(f"{out} holds a run with other overrides ({done.get('overrides')}); "
                         "move it away or choose another OUTROOT")
    print(json.dumps({"out": out, "kept": "finished earlier with the same overrides"}), flush=True)
    return done


def per_size(recipe: str, pool_dir: str, outroot: str, sizes: list[int], probe: int,
             overrides: list[str], shares: dict[str, float] | None = None,
             pool_step: float | None = None) -> dict[str, Any]:
    """Per-size runs at shares of the pool's CPU budget: iterations from measured CPU seconds per step.

    Resumable and additive: an earlier ``OUTROOT/per_size.json`` keeps its sizes and its pool
    step (so sizes added later get the same budget), and a run already finished with the same
    overrides is kept rather than repeated.
    """
    if not (Path(pool_dir) / "synth.json").is_file():
        raise SystemExit(f"{pool_dir} holds no synth.json; run `any_size_study.py synth` for the pool first")
    pool = json.loads((Path(pool_dir) / "synth.json").read_text())
    pool_iterations = pool["synthesizer"]["iterations"]
    shares = shares or dict(SHARES)
    summary = Path(outroot, "per_size.json")
    record: dict[str, Any] = {"pool": str(pool_dir), "pool_iterations": pool_iterations, "sizes": {}}
    if summary.is_file():
        earlier = json.loads(summary.read_text())
        if earlier["pool_iterations"] != pool_iterations:
            raise SystemExit(f"{summary} was budgeted for a {earlier['pool_iterations']}-step pool, not {pool_iterations}")
        if pool_step is not None and round(pool_step, 4) != earlier["pool_step_cpu_seconds"]:
            raise SystemExit(f"{summary} holds runs budgeted at {earlier['pool_step_cpu_seconds']} CPU s per pool "
                             f"step, not {pool_step}; choose another OUTROOT to budget them anew")
        record = earlier
        pool_step = earlier["pool_step_cpu_seconds"]
    Path(outroot).mkdir(parents=True, exist_ok=True)
    short, long = max(1, probe // 4), probe
    if pool_step is None and pool.get("step_cpu_seconds") is not None:  # a budget stated directly (e.g. an extension's)
        pool_step = pool["step_cpu_seconds"]
    if pool_step is None:
        pool_overrides = [o for o in pool["overrides"] if not o.startswith("synthesizer.iterations=")]
        pool_step = step_cpu(pool["recipe"], f"{outroot}/pool-probe", pool_overrides, short, long)
    record["pool_step_cpu_seconds"] = round(pool_step, 4)
    budget = pool_iterations * pool_step
    record["pool_budget_cpu_seconds"] = round(budget, 1)
    for ipc in sizes:
        base = [*overrides, f"synthesizer.ipc={ipc}"]
        cells = record["sizes"].setdefault(str(ipc), {})
        per_step = next((c["step_cpu_seconds"] for c in cells.values()), None)
        if per_step is None:
            per_step = step_cpu(recipe, f"{outroot}/ipc{ipc}-probe", base, short, long)
        for name, share in shares.items():
            iterations = max(1, round(budget * share / per_step))
            out, run = f"{outroot}/ipc{ipc}-{name}", [*base, f"synthesizer.iterations={iterations}"]
            done = _finished(out, run) or synth(recipe, out, run)
            cells[name] = {"iterations": iterations, "share": share, "step_cpu_seconds": round(per_step, 4),
                           "budget_cpu_seconds": round(budget * share, 1),
                           "seconds": done["seconds"], "cpu_seconds": done["cpu_seconds"]}
            summary.write_text(json.dumps(record, indent=2) + "\n")
    return record


def prefix_rows(classes: list[int], k: int) -> list[int]:
    """Rows of the first ``k`` images of every class, in the set's order."""
    seen: dict[int, int] = {}
    rows = []
    for i, c in enumerate(classes):
        if seen.get(c, 0) < k:
            rows.append(i)
        seen[c] = seen.get(c, 0) + 1
    return rows


def prefixes(path: str, pattern: str, sizes: list[int]) -> None:
    from condensery import SyntheticSet

    full = SyntheticSet.load(path)
    for ipc in sizes:
        rows = prefix_rows(full.hard_labels.tolist(), ipc)
        meta = {**full.metadata, "ipc": ipc, "prefix_of": path}
        SyntheticSet(full.images[rows], full.labels[rows], full.lr, metadata=meta).save(pattern.format(ipc=ipc))


def load_arm(path: Path, ctx) -> Any:
    """A ``.safetensors`` set checked against the task and put in its normalised space."""
    from condensery import SyntheticSet
    from condensery.task_space import check_set, to_task_space

    if ctx.data.zca is not None:
        raise SystemExit("the any-size study judges unwhitened sets; use a recipe with data.zca=false")
    synset = SyntheticSet.load(path)
    check_set(synset, ctx.task, path)
    return to_task_space(synset, ctx.task).to(ctx.device)


def _summary(values: list[float]) -> dict[str, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n, "values": values}


def evaluate(recipe: str, sizes: list[int], arms: list[str], output: str, overrides: list[str]) -> dict[str, Any]:
    from condensery import get_registry, open_task
    from condensery.evaluation import random_like

    plan, ctx = open_task(recipe, get_registry(), overrides=overrides)
    _, evaluator = plan.evaluators[0]
    table: dict[str, Any] = {"recipe": recipe, "overrides": overrides, "evaluator": plan.resolved["evaluators"][0],
                             "sizes": {}}
    out = Path(output)
    if out.is_file():  # resumable: sizes and arms already measured are kept
        table = json.loads(out.read_text())
    for ipc in sizes:
        row = table["sizes"].setdefault(str(ipc), {})
        for spec in arms:
            name, _, pattern = spec.partition("=")
            if name in row:
                continue
            path = Path(pattern.format(ipc=ipc))
            if not path.exists():  # not recorded, so a later call with the set in place judges it
                print(f"ipc {ipc:>3} {name:<16} skipped: {path} does not exist", flush=True)
                continue
            synset = load_arm(path, ctx)
            synset.metadata["role"] = "synthetic"
            t = time.perf_counter()
            result = evaluator.evaluate(synset, ctx)[0]
            entry = {**_summary(result.values), "path": str(path), "seconds": round(time.perf_counter() - t, 1),
                     "label_loss": result.extra.get("label_loss"), "lr": result.extra.get("lr"),
                     "val_mean": result.extra.get("val_mean")}
            random_key = "random-ls" if synset.metadata.get("label_solver") else "random"
            if random_key not in row:
                rnd = random_like(ctx, synset)  # the runner's random arm: own least-squares labels if solved
                row[random_key] = {**_summary(evaluator.evaluate(rnd, ctx)[0].values)}
            base = row[random_key]
            entry["minus_random"] = entry["mean"] - base["mean"]
            entry["minus_random_se"] = math.sqrt(entry["std"] ** 2 / entry["n"] + base["std"] ** 2 / base["n"])
            entry["against"] = random_key
            row[name] = entry
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(table, indent=2) + "\n")
            print(f"ipc {ipc:>3} {name:<16} {100 * entry['mean']:6.2f} ± {100 * entry['std']:.2f} "
                  f"({random_key} {100 * base['mean']:6.2f} ± {100 * base['std']:.2f})", flush=True)
    return table


def table(paths: list[str], arms: list[str] | None) -> str:
    rows: dict[str, dict[str, Any]] = {}
    for path in paths:
        for ipc, cells in json.loads(Path(path).read_text())["sizes"].items():
            rows.setdefault(ipc, {}).update(cells)
    names = arms or sorted({k for cells in rows.values() for k in cells})
    lines = ["| IPC | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for ipc in sorted(rows, key=int):
        cells = rows[ipc]
        shown = []
        for name in names:
            c = cells.get(name)
            ok = c is not None and "mean" in c
            shown.append(f"{100 * c['mean']:.2f} ± {100 * c['std']:.2f}" if ok else "–")
        lines.append(f"| {ipc} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def compare_arms(paths: list[str], arm: str, against: list[str]) -> str:
    """Markdown: ``arm`` minus each of ``against`` per size, pooled over the seeds' evaluate outputs.

    One output per distillation seed. The point is the mean over seeds of each seed's mean
    difference, the 95 % interval a two-level bootstrap (seeds, then each arm's networks,
    unpaired: ``condensery.compare.pooled_interval``); ``seeds`` counts those holding both cells.
    """
    from condensery.compare import pooled_interval

    tables = [json.loads(Path(p).read_text())["sizes"] for p in paths]
    sizes = sorted({int(k) for t in tables for k in t})
    lines = [f"| IPC | {arm} | " + " | ".join(f"minus {b}" for b in against) + " |", "|---" * (len(against) + 2) + "|"]
    for ipc in sizes:
        cells = [t.get(str(ipc), {}) for t in tables]
        mine = [c[arm]["values"] for c in cells if "values" in c.get(arm, {})]
        if not mine:
            continue
        shown = [f"{100 * sum(map(sum, mine)) / sum(map(len, mine)):.2f} ({len(mine)} seeds, {sum(map(len, mine))} nets)"]
        for other in against:
            pairs = [(c[arm]["values"], c[other]["values"], False) for c in cells
                     if "values" in c.get(arm, {}) and "values" in c.get(other, {})]
            if not pairs:
                shown.append("–")
                continue
            mean, low, high = pooled_interval(pairs)
            shown.append(f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}] ({len(pairs)})")
        lines.append(f"| {ipc} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("synth", help="run a recipe's synthesizer alone, timed")
    s.add_argument("recipe")
    s.add_argument("out")
    s.add_argument("--set", dest="overrides", action="append", default=[])
    p = sub.add_parser("per-size", help="per-size pixel runs at shares of a pool run's CPU time")
    p.add_argument("recipe")
    p.add_argument("pool_dir")
    p.add_argument("outroot")
    p.add_argument("--sizes", type=int, nargs="+", required=True)
    p.add_argument("--probe", type=int, default=40, help="steps of the longer CPU-time probe (the shorter: a quarter)")
    p.add_argument("--share", dest="shares", action="append", default=None,
                   help="NAME=FRACTION of the pool's CPU budget, repeatable (default: fifth=0.2 full=1)")
    p.add_argument("--pool-step-cpu", type=float, default=None,
                   help="the pool's CPU seconds per step, measured before (e.g. for a second seed's runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    f = sub.add_parser("prefixes", help="first k per class of an ordinary set")
    f.add_argument("set")
    f.add_argument("pattern")
    f.add_argument("--sizes", type=int, nargs="+", required=True)
    t = sub.add_parser("table", help="markdown table of evaluate outputs")
    t.add_argument("paths", nargs="+")
    t.add_argument("--arms", nargs="+", default=None)
    c = sub.add_parser("compare", help="one arm minus others per size, pooled over seeds' evaluate outputs")
    c.add_argument("paths", nargs="+")
    c.add_argument("--arm", required=True)
    c.add_argument("--against", nargs="+", required=True)
    e = sub.add_parser("evaluate", help="judge arms at several sizes next to the random subset")
    e.add_argument("recipe")
    e.add_argument("--sizes", type=int, nargs="+", required=True)
    e.add_argument("--arm", action="append", default=[], help="NAME=PATH with {ipc}, e.g. pool=out/pool-{ipc}.safetensors")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.command == "synth":
        synth(args.recipe, args.out, args.overrides)
    elif args.command == "table":
        print(table(args.paths, args.arms))
    elif args.command == "prefixes":
        prefixes(args.set, args.pattern, args.sizes)
    elif args.command == "compare":
        print(compare_arms(args.paths, args.arm, args.against))
    elif args.command == "per-size":
        per_size(args.recipe, args.pool_dir, args.outroot, args.sizes, args.probe, args.overrides,
                 parse_shares(args.shares), args.pool_step_cpu)
    else:
        evaluate(args.recipe, args.sizes, args.arm, args.output, args.overrides)


if __name__ == "__main__":
    from condensery import UserError

    try:
        main()
    except UserError as exc:  # condensery's own account of a bad recipe, override or file
        print(f"any_size_study: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except SystemExit as stop:  # a mistake the study states (a message) is the user's: one line, exit 2
        if isinstance(stop.code, str):
            print(f"any_size_study: {stop.code}", file=sys.stderr)
            raise SystemExit(2) from None
        raise
