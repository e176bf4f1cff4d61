"""Seconds per evaluation epoch, eager against ``runtime.compile: yes``, as one JSON row.

The evaluators' loop (``train_classifier``) on a CIFAR-10-shaped IPC 10 set (100 random
images, ConvNet-3 width 128 with instance norm, DSA augmentation, batch 256: one step per
epoch), one thread. A fresh eager and a fresh compiled network train one epoch at a time,
alternating, so load on a shared machine falls on both alike; ``--epochs`` timed epochs of
each follow ``--warmup`` untimed ones. ``compile_seconds`` is what the compiled network's
first epoch took beyond its median (the compile, or the inductor cache load when
``$CONDENSERY_CACHE/inductor`` already holds it), ``break_even_epochs`` the epochs it takes to
pay for itself, ``max_abs_diff`` the largest difference of the two networks' logits after
the same training. ``--arms compiled`` (or ``eager``) trains only that arm, so that
``peak_memory_mb`` (the process's peak RSS) is its own and ``total_seconds`` is a whole
evaluation's training (``--warmup 1 --epochs 300``: 301 epochs, as the reference's
``evaluate_synset`` runs), e.g. for a side-by-side run against another code.

    python tools/bench_eval_compile.py --epochs 5
    python tools/bench_eval_compile.py --arms compiled --epochs 300
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs of each arm")
    ap.add_argument("--warmup", type=int, default=1, help="untimed epochs of each arm first")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--arms", default="eager,compiled", help="which arms to train: eager,compiled (default), eager, compiled")
    args = ap.parse_args(argv)

    import torch
    from condensery import RealData, context_of, get_registry, load_plan
    from condensery.data import DSA
    from condensery.training import train_classifier

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10 * args.ipc, 3, 32, 32, generator=g)
    y = torch.arange(10).repeat_interleave(args.ipc)
    # a CIFAR-10-shaped task on random tensors: the recipe's data section only names a source
    data = RealData("bench", x, y, x[:0], y[:0], x[:10], y[:10], [str(i) for i in range(10)], [0.0] * 3, [1.0] * 3)
    recipe = {"name": "bench-eval", "seed": 0, "data": {"name": "digits"},
              "model": {"name": "convnet", "depth": 3, "width": args.width, "norm": "instancenorm"},
              "runtime": {"cpu": True, "compile": "yes"}}
    registry = get_registry()
    ctx = context_of(load_plan(recipe, registry), registry, data=data)
    runtime = ctx.runtime
    arms = {}
    names = [a for a in ("eager", "compiled") if a in args.arms.split(",")]
    if not names:
        raise SystemExit("--arms: name eager, compiled or both")
    for name in names:
        torch.manual_seed(0)  # the same initial weights in both arms
        net = ctx.create_model()
        arms[name] = {"net": net, "gen": torch.Generator().manual_seed(1), "times": [],
                      "compiled": runtime.compiled if name == "compiled" else None}
    augment = DSA()
    for _epoch in range(args.warmup + args.epochs):
        for arm in arms.values():
            t0 = time.perf_counter()
            train_classifier(arm["net"], x, y, epochs=1, lr=0.01, generator=arm["gen"], augment=augment,
                             lr_schedule="none", compiled=arm["compiled"])
            arm["times"].append(time.perf_counter() - t0)
    row = {"threads": torch.get_num_threads(), "width": args.width, "ipc": args.ipc, "images": len(x),
           "warmup": args.warmup, "epochs": args.epochs, "failed": runtime.compiler.failed,
           "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    for name, arm in arms.items():
        timed = arm["times"][args.warmup:]
        row[name] = {"seconds_per_epoch": round(statistics.median(timed), 4), "total_seconds": round(sum(arm["times"]), 2),
                     "epoch_seconds": [round(t, 4) for t in arm["times"]]}
    if "compiled" in arms:
        row["compile_seconds"] = round(arms["compiled"]["times"][0] - row["compiled"]["seconds_per_epoch"], 2)
    if len(arms) < 2:
        print(json.dumps(row))
        return
    eager, compiled = row["eager"]["seconds_per_epoch"], row["compiled"]["seconds_per_epoch"]
    row["speedup"] = round(eager / compiled, 3)
    row["break_even_epochs"] = round(row["compile_seconds"] / (eager - compiled), 1) if eager > compiled else None
    with torch.no_grad():
        probe = x[:32]
        arms["eager"]["net"].eval()
        arms["compiled"]["net"].eval()
        row["max_abs_diff"] = float((arms["eager"]["net"](probe) - arms["compiled"]["net"](probe)).abs().max())
    print(json.dumps(row))


if __name__ == "__main__":
    main()
