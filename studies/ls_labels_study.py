"""Do least-squares (KRR) labels alone lift the random real subset X0?

The cheapest question behind MGDD's ``labels.set: krr``: before any generator refines X0,
what do closed-form KRR labels (MGDD's label solve, in RFAD random features) do for the
random real subset itself? Two arms per IPC, under the hard-label evaluator's protocol
(SGD, fixed lr, DSA, ``random_draws: per-run``, ``targets: stored``):

- ``hard``: the class-balanced random subset with its class labels (cross-entropy);
- ``krr``: the same kind of subset with its own KRR labels (``label_like`` of a template
  that carries ``label_solver``), trained with squared error on the regression targets.

Run ``r`` of both arms trains on the same fresh draw with the same network seed (the
evaluator's per-run streams), so the difference is paired: it is what the labels change.
Everything goes through the public API: the context is built as ``condensery eval`` builds
it, the evaluator comes from the registry, the random arm is labelled by ``label_like``.

    OMP_NUM_THREADS=1 python studies/ls_labels_study.py --dataset digits --ipcs 1 10 --runs 10 \
        --out runs/ls-labels/digits.json
    OMP_NUM_THREADS=1 python studies/ls_labels_study.py --dataset cifar10 --ipcs 10 --runs 5 \
        --out runs/ls-labels/cifar10.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = {
    "digits": "{name: digits}",
    "cifar10": "{name: imagefolder, root: /root/data/cifar10}",
}

RECIPE = """
name: ls-labels-{dataset}
seed: {seed}
data: {data}
model: {{name: convnet, depth: 3, width: 32, norm: instancenorm}}
evaluators: [{{name: hard-label}}]
runtime: {{threads: 1, mixed_precision: 'no'}}
"""


def solver(args: argparse.Namespace) -> dict[str, Any]:
    """The label solver MGDD records with ``labels.set: krr`` (its default label options)."""
    return {"matcher": "krr", "options": {"num_models": args.label_models, "width": args.label_width,
                                          "batch_real": args.label_batch_real, "reg": args.label_reg,
                                          "dsa": False, "resample_every": 1}}


def open_context(args: argparse.Namespace, workdir: Path):
    """The RunContext ``condensery eval`` would build for this task (``open_task``, as every command)."""
    from condensery import get_registry, open_task

    path = workdir / "recipe.yaml"
    path.write_text(RECIPE.format(dataset=args.dataset, seed=args.seed, data=DATA[args.dataset]))
    return open_task(path, get_registry())[1]


def evaluate_arms(ctx, args: argparse.Namespace, ipc: int) -> dict[str, Any]:
    from condensery import SyntheticSet
    from condensery.evaluation import label_like

    evaluator = ctx.registry.get("evaluator", "hard-label").build(
        {"runs": args.runs, "epochs": args.epochs, "lr": args.lr, "augment": "dsa", "random_draws": "per-run",
         "targets": "stored"})
    template = SyntheticSet(ctx.data.train_x[:1], ctx.data.train_y[:1], metadata={"label_solver": solver(args)})
    out: dict[str, Any] = {"ipc": ipc}
    for arm in ("hard", "krr"):
        rnd = ctx.random_subset(ipc)
        rnd.metadata["role"] = "random"
        if arm == "krr":
            rnd = label_like(ctx, template, rnd)
        t = time.perf_counter()
        [res] = evaluator.evaluate(rnd, ctx)
        out[arm] = {"mean": res.mean, "std": res.std, "values": res.values, "label_loss": res.extra["label_loss"],
                    "label_kind": rnd.label_kind, "seconds": round(time.perf_counter() - t, 1)}
        if arm == "krr":
            y = rnd.labels
            out[arm]["labels"] = {"row_sum_abs_max": float(y.sum(1).abs().max()), "min": float(y.min()),
                                  "max": float(y.max()),
                                  "argmax_agrees": float((y.argmax(1) == rnd.classes).float().mean())}
        print(json.dumps({"dataset": args.dataset, "ipc": ipc, "arm": arm,
                          **{k: v for k, v in out[arm].items() if k != "values"}}), flush=True)
    diffs = [b - a for a, b in zip(out["hard"]["values"], out["krr"]["values"])]
    out["paired_difference"] = {"mean": statistics.mean(diffs),
                                "std": statistics.stdev(diffs) if len(diffs) > 1 else 0.0, "values": diffs}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATA), default="digits")
    ap.add_argument("--ipcs", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--runs", type=int, default=5, help="fresh draws (and networks) per arm")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label-models", type=int, default=2)
    ap.add_argument("--label-width", type=int, default=128)
    ap.add_argument("--label-batch-real", type=int, default=64)
    ap.add_argument("--label-reg", type=float, default=1e-6)
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = open_context(args, Path(tmp))
        results = [evaluate_arms(ctx, args, ipc) for ipc in args.ipcs]
    report = {"dataset": args.dataset, "model": "convnet depth 3 width 32 instancenorm",
              "protocol": {"evaluator": "hard-label", "targets": "stored", "runs": args.runs, "epochs": args.epochs,
                           "lr": args.lr, "augment": "dsa", "random_draws": "per-run"},
              "label_solver": solver(args), "seed": args.seed, "results": results,
              "seconds": round(time.perf_counter() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for r in results:
        h, k, d = r["hard"], r["krr"], r["paired_difference"]
        print(f"{args.dataset} ipc {r['ipc']}: hard {100 * h['mean']:.2f} ± {100 * h['std']:.2f}  "
              f"krr {100 * k['mean']:.2f} ± {100 * k['std']:.2f}  paired {100 * d['mean']:+.2f} ± {100 * d['std']:.2f}")


if __name__ == "__main__":
    main()
