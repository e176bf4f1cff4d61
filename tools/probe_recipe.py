"""Quick probe of a distillation recipe under overrides: synthesis loss trend + a short evaluation.

Why: diagnosing a matcher (does its loss fall? do the pixels drift?) needs many small variants,
and a full ``condensery run`` with 3 evaluation networks per variant is too slow on a CPU.

    python tools/probe_recipe.py recipes/digits/dc-ipc1.yaml \\
        "model.width=32;synthesizer.iterations=100" "model.width=32;model.depth=2;synthesizer.iterations=100"

Each argument after the recipe is one variant: ``;``-separated ``--set`` overrides.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from condensery import get_registry, make_generator, open_task, train_classifier
from condensery.training import accuracy


def probe(recipe: str, overrides: list[str], evals: int, epochs: int) -> dict:
    """Synthesize under ``overrides``; train ``evals`` fresh task networks on the set; test accuracy."""
    registry = get_registry()
    plan, ctx = open_task(recipe, registry, overrides=overrides, needs_synthesizer=True, run_dir=tempfile.mkdtemp(),
                          announce=False)
    data = ctx.data
    if plan.matcher is not None:
        plan.matcher.prepare(ctx)
    t = time.perf_counter()
    synset = plan.synthesizer.synthesize(ctx)
    seconds = time.perf_counter() - t
    accs = []
    for r in range(evals):
        torch.manual_seed(r)
        net = ctx.create_model()
        train_classifier(net, synset.images, synset.labels, epochs=epochs, lr=0.01,
                         generator=make_generator(0, "probe", r))
        accs.append(accuracy(net, data.test_x, data.test_y))
    return {"overrides": overrides, "seconds": round(seconds, 1),
            "loss": [round(h["loss"], 2) for h in ctx.history if "loss" in h],
            "image_std": round(synset.images.std().item(), 3), "accuracy": [round(100 * a, 1) for a in accs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("variants", nargs="+", help="';'-separated overrides per variant")
    ap.add_argument("--evals", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=300)
    args = ap.parse_args()
    for variant in args.variants:
        print(probe(args.recipe, [o for o in variant.split(";") if o], args.evals, args.epochs), flush=True)


if __name__ == "__main__":
    main()
