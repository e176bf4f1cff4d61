"""Distilled for one task, evaluated with another: the distilled-for x evaluated-with matrix.

Distillation is only well posed for a stated task (dataset, model, training protocol,
metric). This study distils one set per *distillation task* (the recipe's model, and the
matcher's augmentation where the task's protocol has none) and evaluates every set under
every *evaluation task* (model x protocol), next to the random real subset of the same size
under the same task. The diagonal is the standard setting; off-diagonal cells show how much
of a set's value is tied to the task it was made for (``condensery eval`` warns about them).

Each distillation is an ordinary run directory under ``--out`` (reused when finished); each
cell is ``condensery eval`` of that set with the evaluation task's overrides. CPU budgets:

    flock /tmp/condensery-cpu.lock nice -n 5 python tools/task_mismatch_study.py --dataset digits
    flock /tmp/condensery-cpu.lock nice -n 5 python tools/task_mismatch_study.py --dataset cifar10

Prints one JSON line per cell and writes ``matrix-<dataset>.json`` / ``.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DATA = {
    "digits": "{name: digits}",
    "cifar10": "{name: imagefolder, root: /root/data/cifar10, train_per_class: 500}",
}

#: model specs (recipe ``model`` overrides) by short name
MODELS = {
    "convnet": ["model.name=convnet", "model.depth=3", "model.width=32", "model.norm=instancenorm"],
    "convnet-bn": ["model.name=convnet_bn", "model.depth=3", "model.width=32"],
    "mlp": ["model.name=mlp", "model.width=256"],
}

#: distillation tasks: the model the set is distilled for
DISTIL = ["convnet", "mlp"]

#: evaluation tasks: (model, epochs as a share of --epochs)
EVAL = [("convnet", 1.0), ("convnet", 0.1), ("convnet-bn", 1.0), ("mlp", 1.0)]

TEMPLATE = """
name: {name}
seed: 0
data: {data}
model: {{name: convnet}}
synthesizer:
  name: pixel
  ipc: {ipc}
  iterations: {iterations}
  lr: 1.0
  init: real
  matcher: {{name: distribution, batch_real: 64, dsa: false}}
evaluators:
- {{name: hard-label, runs: {runs}, epochs: {epochs}, augment: none}}
runtime: {{mixed_precision: 'no'}}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATA), default="digits")
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=300, help="DM iterations per distillation")
    ap.add_argument("--epochs", type=int, default=150, help="E: evaluation epochs of the standard protocol")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "runs" / "task-mismatch"))
    args = ap.parse_args()

    from condensery.plugins import get_registry
    from condensery.progress import set_quiet
    from condensery.recipe import load_recipe
    from condensery.runner import run
    from condensery_eval.evaluate import run_eval

    set_quiet(True)
    registry = get_registry()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = out / f"{args.dataset}.yaml"
    recipe.write_text(TEMPLATE.format(name=f"mismatch-{args.dataset}", data=DATA[args.dataset], ipc=args.ipc,
                                      iterations=args.iterations, runs=args.runs, epochs=args.epochs))
    cells = []
    for distil in DISTIL:
        plan = load_recipe(recipe, [*MODELS[distil], f"name=mismatch-{args.dataset}-{distil}"], registry)
        t = time.perf_counter()
        run(plan, registry, out / plan.name)
        distil_s = round(time.perf_counter() - t, 1)
        for model, share in EVAL:
            epochs = max(1, round(args.epochs * share))
            overrides = [*MODELS[model], f"evaluators.0.epochs={epochs}"]
            t = time.perf_counter()
            eval_dir = out / plan.name / f"eval-{model}-{epochs}"
            metrics_path = eval_dir / "metrics.json"
            if metrics_path.is_file():
                m = json.loads(metrics_path.read_text())
            else:
                m, _ = run_eval(out / plan.name / "synthetic.safetensors", recipe, eval_dir, overrides, registry)
            acc = {x["set"]: (x["mean"], x["std"]) for x in m["results"]}
            cell = {"dataset": args.dataset, "distilled_for": distil, "evaluated_with": f"{model}, {epochs} epochs", "synthetic": acc["synthetic"], "random": acc["random"],
                    "mismatch": m.get("task_mismatch", []), "distil_seconds": distil_s,
                    "eval_seconds": round(time.perf_counter() - t, 1)}
            cells.append(cell)
            print(json.dumps(cell), flush=True)
    (out / f"matrix-{args.dataset}.json").write_text(json.dumps(cells, indent=2))
    cols = [c["evaluated_with"] for c in cells if c["distilled_for"] == DISTIL[0]]
    lines = [f"{args.dataset}: DM, IPC {args.ipc}, {args.iterations} iterations, no augmentation; "
             f"evaluation {args.runs} runs, test accuracy at the end of training (mean ± std)", "",
             "| distilled for \\ evaluated with | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for distil in DISTIL:
        row = [c for c in cells if c["distilled_for"] == distil]
        lines.append(f"| {distil} | " + " | ".join(f"{100 * c['synthetic'][0]:.1f} ± {100 * c['synthetic'][1]:.1f}" for c in row) + " |")
    row = [c for c in cells if c["distilled_for"] == DISTIL[0]]
    lines.append("| random real subset | " + " | ".join(f"{100 * c['random'][0]:.1f} ± {100 * c['random'][1]:.1f}" for c in row) + " |")
    (out / f"matrix-{args.dataset}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
