"""How many distilled points does the multi-index task need, as d and r grow?

For each (d, r) the study distils sets of growing size (``--ipc`` grid, points per class)
with a recipe (default ``recipes/multi-index/dm.yaml``) and records the test accuracy of
the two-layer MLP trained on them, next to the random real subset of the same size. The
target is a fixed share of the way from chance to the accuracy of the same MLP trained on
all real training points: ``chance + frac x (full - chance)``. The smallest size reaching
it is reported with the theory's memory scales ``r²d + L`` and ``d²``.

Every distillation is ``condensery run`` into a run directory under ``--out``, reused when
finished, so the study can be split over several jobs (the machine's CPU lock allows ~12
minutes per job). The full-data ceiling is trained in this process through the public API
(``open_task``, ``train_classifier``). Prints one JSON line per run and writes
``summary.json`` and ``summary.md``.

    flock /tmp/condensery-cpu.lock nice -n 5 python studies/multi_index_study.py --d 8 16 32 --r 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from study_cli import accuracies, condensery, read_metrics, sets

REPO = Path(__file__).resolve().parents[1]


def full_data_accuracy(plan, ctx, epochs: int, lr: float, runs: int) -> float:
    """The recipe's MLP trained on every real training point (the ceiling of the task)."""
    from condensery import make_generator, seed_global_from, train_classifier
    from condensery.training import accuracy

    data = ctx.data
    accs = []
    for r in range(runs):
        gen = make_generator(plan.seed, "full-data", r)
        seed_global_from(gen)
        model = train_classifier(ctx.create_model(), data.train_x, data.train_y, epochs=epochs, lr=lr,
                                 generator=gen, batch_size=256, augment=None)
        accs.append(accuracy(model, data.test_x, data.test_y))
    return sum(accs) / len(accs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(REPO / "recipes" / "multi-index" / "dm.yaml"))
    ap.add_argument("--d", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--r", type=int, nargs="+", default=[2])
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32], help="points per class, ascending")
    ap.add_argument("--frac", type=float, default=0.9, help="target share of the way from chance to full-data accuracy")
    ap.add_argument("--full-epochs", type=int, default=100)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra recipe override KEY=VALUE")
    ap.add_argument("--out", default=str(REPO / "runs" / "multi-index-study"))
    ap.add_argument("--keep-going", action="store_true", help="run the whole ipc grid, not just up to the target")
    args = ap.parse_args()

    from condensery import get_registry, open_task

    registry = get_registry()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    full_path = out / "full_data.json"
    full = json.loads(full_path.read_text()) if full_path.is_file() else {}
    summary = []
    for r in args.r:
        for d in args.d:
            if r > d:
                continue
            base = [f"data.d={d}", f"data.r={r}", *args.overrides]
            plan, ctx = open_task(args.recipe, registry, overrides=base, announce=False)
            key = f"{plan.name}:d{d}:r{r}"
            if key not in full:
                ev = plan.resolved["evaluators"][0]
                full[key] = full_data_accuracy(plan, ctx, args.full_epochs, float(ev.get("lr", 0.01)), 2)
                full_path.write_text(json.dumps(full, indent=2))
            k = ctx.task.num_classes
            chance = 1.0 / k
            target = chance + args.frac * (full[key] - chance)
            width = int(plan.model.get("width", 64))
            row = {"d": d, "r": r, "classes": k, "full_data": full[key], "target": target, "width": width,
                   "r2d_plus_L": r * r * d + width, "d2": d * d, "runs": []}
            reached = {"synthetic": None, "random": None}
            for ipc in args.ipc:
                t = time.perf_counter()
                name = f"{plan.name}-d{d}-r{r}-ipc{ipc}"
                if read_metrics(out / name) is None:
                    condensery("run", args.recipe, "-o", str(out / name), "--quiet",
                               *sets(*base, f"synthesizer.ipc={ipc}", f"name={name}"))
                acc = accuracies(read_metrics(out / name))
                entry = {"ipc": ipc, "points": ipc * k, "synthetic": acc["synthetic"], "random": acc["random"],
                         "seconds": round(time.perf_counter() - t, 1)}
                row["runs"].append(entry)
                print(json.dumps({"d": d, "r": r, **entry}), flush=True)
                for s in reached:
                    if reached[s] is None and acc[s][0] >= target:
                        reached[s] = ipc * k
                if reached["synthetic"] is not None and reached["random"] is not None and not args.keep_going:
                    break
            row["points_needed"] = reached
            summary.append(row)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [f"target: chance + {args.frac} x (full-data accuracy - chance); recipe {args.recipe}", "",
             "| d | r | full-data acc | target | distilled points needed | random points needed | r²d+L | d² |",
             "|---|---|---|---|---|---|---|---|"]
    for row in summary:
        n = row["points_needed"]
        lines.append(f"| {row['d']} | {row['r']} | {100 * row['full_data']:.1f} % | {100 * row['target']:.1f} % | "
                     f"{n['synthetic'] or '> ' + str(args.ipc[-1] * row['classes'])} | "
                     f"{n['random'] or '> ' + str(args.ipc[-1] * row['classes'])} | {row['r2d_plus_L']} | {row['d2']} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
