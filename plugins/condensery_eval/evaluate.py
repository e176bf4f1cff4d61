"""``condensery eval``: judge an existing distilled set under a recipe's evaluators.

Builds the same RunContext a run would (data, task, runtime) without synthesizing, then
applies every evaluator to the set and, when the evaluator asks for it, to the random real
subset with the same images per class. Writes ``metrics.json`` with the run schema.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from condensery import Result, RunContext, SyntheticSet, UserError

from .protocol import class_counts, random_like
from .sets import load_set


def plan_for_eval(recipe: str | Path, overrides: list[str], registry: Any):
    """The recipe resolved as for a run; a recipe without a synthesizer gets a placeholder."""
    from condensery.recipe import apply_overrides, load_yaml, resolve

    doc = apply_overrides(load_yaml(recipe), overrides)
    if "synthesizer" not in doc:
        names = registry.names("synthesizer")
        if names:  # never run; resolve() only insists the section exists
            doc["synthesizer"] = {"name": "random" if "random" in names else names[0]}
    return resolve(doc, registry)


def context_for(plan: Any, registry: Any, run_dir: Path | None) -> RunContext:
    """Runtime, data and task of ``plan``, as ``condensery run`` builds them, without synthesis."""
    from condensery.runner import load_data, make_task
    from condensery.runtime import Runtime

    runtime = Runtime(plan.runtime, plan.seed)
    data = load_data(plan, runtime)
    return RunContext(make_task(plan, data), data, runtime, registry, run_dir, plan.resolved)


def evaluate_set(plan: Any, ctx: RunContext, synset: SyntheticSet) -> list[Result]:
    """Every evaluator on ``synset`` and, for those that compare, on the same-size random subset."""
    results: list[Result] = []
    syn = synset.to(ctx.device)
    syn.metadata["role"] = "synthetic"
    random_set = None
    for _name, evaluator in plan.evaluators:
        for r in evaluator.evaluate(syn, ctx):
            r.set = r.set or "synthetic"
            results.append(r)
        if evaluator.compares_random:
            if random_set is None:
                random_set = random_like(ctx, syn)
            for r in evaluator.evaluate(random_set, ctx):
                r.set = "random"
                results.append(r)
    return results


def run_eval(synset_path: str | Path, recipe: str | Path, output: str | Path | None,
             overrides: list[str], registry: Any) -> tuple[dict[str, Any], Path]:
    from condensery.progress import say
    from condensery.rundir import write_json, write_yaml
    from condensery.runner import environment

    t0 = time.perf_counter()
    synset_path = Path(synset_path)
    if not synset_path.exists():
        raise UserError(f"synthetic set '{synset_path}' does not exist; give a .safetensors file or an ImageFolder folder")
    plan = plan_for_eval(recipe, overrides, registry)
    if output is None:
        stem = "" if synset_path.suffix == ".safetensors" else f"{synset_path.name}-"
        output = synset_path.parent / f"eval-{stem}{plan.name}"
    out = Path(output)
    ctx = context_for(plan, registry, out)
    synset = load_set(synset_path, ctx.task, getattr(ctx.data, "zca", None))
    counts = class_counts(synset, ctx.task.num_classes)
    ipc = counts[0] if len(set(counts)) == 1 else round(len(synset) / ctx.task.num_classes, 2)
    say(f"[eval] {synset_path} ({len(synset)} images, ipc {ipc}) on {plan.data_name}, device {ctx.device}")
    t = time.perf_counter()
    results = evaluate_set(plan, ctx, synset)
    seconds = {"evaluate": time.perf_counter() - t, "total": time.perf_counter() - t0}
    metrics = {
        "recipe": plan.name, "method": synset.metadata.get("method", synset_path.stem),
        "dataset": plan.data_name, "ipc": ipc, "num_images": len(synset), "source": str(synset_path),
        "results": [r.to_json() for r in results],
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "environment": environment(ctx.runtime),
    }
    if ctx.runtime.is_main:
        write_yaml(out / "recipe.yaml", plan.resolved)
        write_json(out / "metrics.json", metrics)
    for r in results:
        say(f"  {r.evaluator:<12} {r.model:<10} {r.set:<9} {100 * r.mean:6.2f} ± {100 * r.std:.2f} % ({r.runs} runs)")
    return metrics, out
