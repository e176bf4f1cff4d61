"""Distilled for one task, evaluated with another: the distilled-for x evaluated-with matrix.

Distillation is only well posed for a stated task (dataset, model, training protocol,
metric). This study distils one set per *distillation task* (DM with the task's model:
ConvNet with instance norm, ConvNet with batch norm, MLP; the recipe's protocol: no
augmentation, E epochs) and evaluates every set under every *evaluation task*: another
model, or the same model under another protocol (3x longer training, DSA augmentation),
next to the random real subset of the same size under the same task. Cells whose task
matches the distillation task (bold) are the standard setting; the others show how much of
a set's value is tied to the task it was made for (``condensery eval`` warns about them).

Each distillation is an ordinary run directory under ``--out`` (reused when finished); each
cell is ``condensery eval`` of that set with the evaluation task's overrides. CPU budgets:

    flock /tmp/condensery-cpu.lock nice -n 5 python tools/task_mismatch_study.py --dataset digits
    flock /tmp/condensery-cpu.lock nice -n 5 python tools/task_mismatch_study.py --dataset cifar10

Prints one JSON line per cell and writes ``matrix-<dataset>-ipc<N>.json`` / ``.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DATA = {
    "digits": "{name: digits}",
    "cifar10": "{name: imagefolder, root: /root/data/cifar10, train_per_class: 500}",
}

#: model specs (recipe ``model`` overrides) by short name; on 8x8 digits the ConvNet has depth 2
#: (depth 3 instance-normalises 2x2 maps and trains badly, see docs/results.md, DC on digits)
DEPTH = {"digits": 2, "cifar10": 3}


def models(dataset: str) -> dict[str, list[str]]:
    depth = f"model.depth={DEPTH[dataset]}"
    return {
        "convnet": ["model.name=convnet", depth, "model.width=32", "model.norm=instancenorm"],
        "convnet-bn": ["model.name=convnet_bn", depth, "model.width=32"],
        "mlp": ["model.name=mlp", "model.width=256"],
    }


#: distillation tasks: the model the set is distilled for (the protocol is the recipe's)
DISTIL = ["convnet", "convnet-bn", "mlp"]

#: evaluation tasks: (column label, model, protocol overrides given the standard epochs E)
EVAL = [
    ("convnet", "convnet", lambda e: [f"evaluators.0.epochs={e}"]),
    ("convnet, 3x epochs", "convnet", lambda e: [f"evaluators.0.epochs={3 * e}"]),
    ("convnet, DSA", "convnet", lambda e: [f"evaluators.0.epochs={e}", "evaluators.0.augment=dsa"]),
    ("convnet-bn", "convnet-bn", lambda e: [f"evaluators.0.epochs={e}"]),
    ("mlp", "mlp", lambda e: [f"evaluators.0.epochs={e}"]),
]

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
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--distil", nargs="+", choices=DISTIL, default=DISTIL, help="rows: models to distil for")
    ap.add_argument("--columns", nargs="+", choices=[label for label, _, _ in EVAL], default=[label for label, _, _ in EVAL],
                    help="evaluation tasks (CPU time: '3x epochs' costs three columns)")
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
    tag = f"{args.dataset}-ipc{args.ipc}"
    recipe = out / f"{tag}.yaml"
    recipe.write_text(TEMPLATE.format(name=f"mismatch-{tag}", data=DATA[args.dataset], ipc=args.ipc,
                                      iterations=args.iterations, runs=args.runs, epochs=args.epochs))
    cells = []
    specs = models(args.dataset)
    columns = [e for e in EVAL if e[0] in args.columns]
    for distil in args.distil:
        plan = load_recipe(recipe, [*specs[distil], f"name=mismatch-{tag}-{distil}"], registry)
        run(plan, registry, out / plan.name)  # reused when finished
        distil_s = json.loads((out / plan.name / "metrics.json").read_text())["seconds"]["synthesize"]
        for label, model, protocol in columns:
            overrides = [*specs[model], *protocol(args.epochs)]
            eval_dir = out / plan.name / ("eval-" + label.replace(", ", "-").replace(" ", ""))
            metrics_path = eval_dir / "metrics.json"
            if metrics_path.is_file():
                m = json.loads(metrics_path.read_text())
            else:
                m, _ = run_eval(out / plan.name / "synthetic.safetensors", recipe, eval_dir, overrides, registry)
            acc = {x["set"]: (x["mean"], x["std"]) for x in m["results"]}
            cell = {"dataset": args.dataset, "distilled_for": distil, "evaluated_with": label, "synthetic": acc["synthetic"], "random": acc["random"],
                    "mismatch": m.get("task_mismatch", []), "distil_seconds": distil_s,
                    "eval_seconds": m.get("seconds", {}).get("evaluate")}
            cells.append(cell)
            print(json.dumps(cell), flush=True)
    (out / f"matrix-{tag}.json").write_text(json.dumps(cells, indent=2))
    cols = [label for label, _, _ in columns]
    lines = [f"{args.dataset}: DM, IPC {args.ipc}, {args.iterations} iterations, no augmentation; "
             f"evaluation {args.runs} runs of {args.epochs} epochs unless stated, test accuracy at the end of training (mean ± std)", "",
             "| distilled for \\ evaluated with | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for distil in args.distil:
        row = [c for c in cells if c["distilled_for"] == distil]
        lines.append(f"| {distil} | " + " | ".join(_cell(c) for c in row) + " |")
    row = [c for c in cells if c["distilled_for"] == args.distil[0]]
    lines.append("| random real subset | " + " | ".join(f"{100 * c['random'][0]:.1f} ± {100 * c['random'][1]:.1f}" for c in row) + " |")
    (out / f"matrix-{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _cell(c: dict) -> str:
    text = f"{100 * c['synthetic'][0]:.1f} ± {100 * c['synthetic'][1]:.1f}"
    return f"**{text}**" if not c["mismatch"] else text


if __name__ == "__main__":
    main()
