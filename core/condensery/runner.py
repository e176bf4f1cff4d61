"""The pipeline of ``condensery run``: recipe -> data -> synthesize -> save -> evaluate -> metrics."""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .context import RunContext, Task
from .data.realdata import RealData, load_raw
from .errors import UserError
from .plugins import Registry
from .progress import say
from .recipe import Plan
from .rundir import save_grid, write_json, write_yaml
from .runtime import Runtime
from .synthetic import SyntheticSet


def environment(runtime: Runtime) -> dict[str, Any]:
    import accelerate
    import timm

    return {
        "condensery": __version__, "torch": torch.__version__, "timm": timm.__version__,
        "accelerate": accelerate.__version__, "python": platform.python_version(),
        "device": str(runtime.device), "mixed_precision": runtime.options.mixed_precision,
        "processes": runtime.num_processes, "threads": torch.get_num_threads(),
    }


def load_data(plan: Plan, runtime: Runtime) -> RealData:
    opts = plan.source.options
    raw = load_raw(plan.data_name, plan.source)
    return RealData.from_raw(plan.data_name, raw, opts.val_fraction, opts.normalize).to(runtime.device)


def make_task(plan: Plan, data: RealData) -> Task:
    return Task(
        dataset=plan.data_name, num_classes=data.num_classes, class_names=data.class_names,
        image_shape=data.image_shape, mean=data.mean, std=data.std, model=dict(plan.model),
        protocol=plan.resolved["evaluators"],
    )


def run(plan: Plan, registry: Registry, out_dir: str | Path | None = None, force: bool = False) -> dict[str, Any]:
    """Run ``plan`` and write its run directory; a finished run is reused unless ``force``."""
    run_dir = Path(out_dir) if out_dir else Path("runs") / plan.name
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file() and not force:
        say(f"{run_dir} is already finished (metrics.json exists); pass --force to run it again")
        return json.loads(metrics_path.read_text())
    if force and (run_dir / "checkpoints").is_dir():
        shutil.rmtree(run_dir / "checkpoints")

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    runtime = Runtime(plan.runtime, plan.seed)
    data = load_data(plan, runtime)
    timings["data"] = time.perf_counter() - t0
    task = make_task(plan, data)
    ipc = plan.synthesizer.options.ipc
    smallest = min(data.class_count(c) for c in range(data.num_classes))
    if smallest < ipc:
        raise UserError(f"ipc {ipc} exceeds the smallest class of '{plan.data_name}' ({smallest} training images); lower synthesizer.ipc")

    ctx = RunContext(task, data, runtime, registry, run_dir, plan.resolved, plan.matcher)
    if runtime.is_main:
        write_yaml(run_dir / "recipe.yaml", plan.resolved)
    if plan.matcher is not None:
        plan.matcher.prepare(ctx)
    registry.pm.hook.on_run_start(context=ctx)
    say(f"[{plan.name}] {plan.synthesizer_name} on {plan.data_name}: ipc {ipc}, "
        f"{data.num_classes} classes, {len(data.train_x)} train images, device {runtime.device}")

    t = time.perf_counter()
    synset = plan.synthesizer.synthesize(ctx)
    timings["synthesize"] = time.perf_counter() - t
    if not isinstance(synset, SyntheticSet):
        raise UserError(f"synthesizer '{plan.synthesizer_name}' returned {type(synset).__name__}, not a SyntheticSet")
    synset.metadata.update(
        method=plan.synthesizer_name, matcher=plan.matcher_name, recipe=plan.name, ipc=ipc,
        num_classes=task.num_classes, class_names=task.class_names, mean=task.mean, std=task.std,
        seed=plan.seed, task=task.to_json(), versions={"condensery": __version__, "torch": torch.__version__},
    )
    if runtime.is_main:
        synset.save(run_dir / "synthetic.safetensors")
        save_grid(synset.images, synset.labels, task.mean, task.std, run_dir / "grid.png")

    t = time.perf_counter()
    results = evaluate_all(plan, ctx, synset)
    timings["evaluate"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    metrics = {
        "recipe": plan.name, "method": plan.synthesizer_name, "matcher": plan.matcher_name,
        "dataset": plan.data_name, "ipc": ipc, "num_images": len(synset),
        "results": [r.to_json() for r in results],
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "environment": environment(runtime),
    }
    if runtime.is_main:
        write_json(metrics_path, metrics)
    registry.pm.hook.on_run_end(context=ctx, metrics=metrics)
    for r in results:
        say(f"  {r.evaluator:<12} {r.model:<10} {r.set:<9} {100 * r.mean:6.2f} ± {100 * r.std:.2f} % ({r.runs} runs)")
    return metrics


def evaluate_all(plan: Plan, ctx: RunContext, synset: SyntheticSet) -> list:
    """Every evaluator on the synthetic set and, under the same protocol, the random subset."""
    results = []
    device_set = synset.to(ctx.device)
    random_set = None
    for _name, evaluator in plan.evaluators:
        for r in evaluator.evaluate(device_set, ctx):
            r.set = r.set or "synthetic"
            results.append(r)
        if evaluator.compares_random:
            if random_set is None:
                random_set = ctx.random_subset(plan.synthesizer.options.ipc)
                random_set.metadata["role"] = "random"
            for r in evaluator.evaluate(random_set, ctx):
                r.set = "random"
                results.append(r)
    return results
