"""``condensery generate GENERATOR_DIR --ipc N -o FILE [--seed S]``: a set of any size.

The generator folder's ``config.json`` names the dataset it was last adapted to (the data
section of that run's recipe); the real initial images are read from there through the
ordinary dataset sources (which never download) and the weights only through safetensors.
The set is written with the same metadata a run writes, so ``condensery eval FILE --recipe
RECIPE`` evaluates it under any recipe of that dataset.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click


def generate_file(generator_dir: str | Path, ipc: int, output: str | Path, seed: int = 0,
                  labels: str | None = None, overrides: list[str] | None = None, registry: Any = None,
                  initial: bool = False) -> Path:
    """Generate ``ipc`` images per class with the generator in ``generator_dir`` into ``output``.

    ``initial``: write the unrefined initial draw X0 instead (the paired random subset), so a
    study can give another method exactly the images the generator started from.
    """
    import torch
    from condensery import RunContext, SyntheticSet, UserError, __version__
    from condensery.plugins import get_registry
    from condensery.recipe import apply_overrides, resolve
    from condensery.runner import load_data, make_task
    from condensery.runtime import Runtime

    from .generator import read_config
    from .synthesizer import MGDDOptions, MGDDSynthesizer, generate_set, load_generator

    registry = registry or get_registry()
    config = read_config(generator_dir)
    lab = config.get("labels", {})
    options = MGDDOptions(mode="generate", generator=str(generator_dir), ipc=ipc, set_labels=labels or "hard",
                          label_models=lab.get("models", 2), label_width=lab.get("width", 128),
                          label_batch_real=lab.get("batch_real", 64), label_reg=lab.get("reg", 1e-6))
    # the stored recipe gives data and model; the synthesizer section is a placeholder that is
    # never run (as in `condensery eval`), so resolving needs no matcher either
    names = registry.names("synthesizer")
    synthesizer: dict[str, Any] = {"name": "random" if "random" in names else names[0]}
    if config.get("gradient_input") or config.get("refine_steps"):  # it reads the matcher's gradient: build it
        if not config.get("matcher"):
            raise UserError(f"'{generator_dir}/config.json' names no matcher, but this generator refines with the "
                            "matcher's gradient; regenerate the folder with an mgdd run")
        synthesizer = {"name": "mgdd", "mode": "generate", "generator": str(generator_dir), "ipc": ipc,
                       "matcher": config["matcher"]}
    doc = {"name": "mgdd-generate", "seed": seed, "data": config["data"],
           "model": config.get("model") or {"name": "convnet"},
           "synthesizer": synthesizer, "runtime": {"mixed_precision": "no"}}
    plan = resolve(apply_overrides(doc, overrides or []), registry)
    runtime = Runtime(plan.runtime, plan.seed, announce=False)
    data = load_data(plan, runtime)
    task = make_task(plan, data)
    ctx = RunContext(task, data, runtime, registry, None, plan.resolved, plan.matcher)
    gen, _ = load_generator(generator_dir, ctx.device)
    gen.add_channels(task.image_shape[0])
    labeler = MGDDSynthesizer(options).labeler_for(ctx) if options.set_labels == "krr" else None
    t = time.perf_counter()
    synset: SyntheticSet = generate_set(gen, ctx, ipc, seed, options.set_labels, labeler, refine=not initial,
                                        matcher=plan.matcher)
    seconds = time.perf_counter() - t  # generation alone: no start-up, no data loading (as a run's synthesize)
    synset.metadata.update(
        method="mgdd" if not initial else "random", matcher=None, recipe=plan.name, ipc=ipc, num_classes=task.num_classes,
        class_names=task.class_names, mean=task.mean, std=task.std, seed=seed, task=task.to_json(),
        generator=str(generator_dir), generate_seconds=round(seconds, 3), versions={"condensery": __version__, "torch": torch.__version__},
    )
    if data.zca is not None:
        synset.metadata["zca"] = data.zca.info()
    return synset.save(output)


@click.command("generate")
@click.argument("generator_dir", type=click.Path())
@click.option("--ipc", type=click.IntRange(min=1), required=True, help="images per class, any size")
@click.option("-o", "--output", "output", required=True, help="the .safetensors SyntheticSet to write")
@click.option("--seed", type=int, default=0, show_default=True, help="draw of the initial real images; same seed, same set")
@click.option("--labels", type=click.Choice(["hard", "krr"]), default="hard", show_default=True,
              help="class labels, or the closed-form KRR labels (soft)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override the stored recipe, e.g. data.root=/elsewhere/cifar10")
@click.option("--initial", is_flag=True,
              help="write the initial real draw X0 the generator would refine (the paired random subset), unrefined")
def generate_command(generator_dir: str, ipc: int, output: str, seed: int, labels: str, overrides: tuple[str, ...],
                     initial: bool) -> None:
    """Write a SyntheticSet of IPC images per class from the meta generator in GENERATOR_DIR."""
    path = generate_file(generator_dir, ipc, output, seed, labels, list(overrides), initial=initial)
    click.echo(f"wrote {path}")
