"""``condensery generate DIR --ipc N -o FILE``: a set of any size from any registered generator.

The folder's ``config.json`` names the generator type; the type decides whether it needs
the real data for this call (``Generator.requires_data``). If it does, the task is opened
from the recipe stored in the folder (its data and model sections, ``--set`` overrides on
top, e.g. ``data.root=/elsewhere``), through the same dataset sources a run uses, which
never download. The set is written with the metadata a run writes, so ``condensery eval``
judges it under any recipe of that dataset, and its picture next to it (``SET.png``, the
run's ``grid.png`` layout).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.errors import UserError
from ..api.generator import GenerateOptions
from ..api.options import validate_options
from ..generators import Generator, load_generator, read_generator_config

if TYPE_CHECKING:  # torch: only once the call's options are valid, so a typo fails at once
    from ..api.context import RunContext
    from ..api.synthetic import SyntheticSet


def generate_options(info: Any, values: dict[str, Any] | None = None) -> GenerateOptions:
    """``values`` validated against the options generator type ``info`` was registered with.

    Declared with ``options=``, they are checked before the generator's module (and torch) is
    imported, so a typo in ``--option`` is one ``UserError`` line at once.
    """
    return validate_options(info.options_class, dict(values or {}), f"generator type '{info.name}'")


def generation_context(generator: Generator, seed: int, overrides: list[str] | None, registry: Any) -> RunContext:
    """The task the generator was made for, opened from its stored recipe; checked against it."""
    from ..tasks import open_task
    from .recipe import build_matcher

    recipe = generator.config.get("recipe") or {}
    if not isinstance(recipe.get("data"), dict):
        raise UserError("the generator's config.json stores no data section (recipe.data); regenerate it with its run")
    doc = {"name": f"generate-{generator.name}", "seed": seed, "data": recipe["data"],
           "model": recipe.get("model") or {"name": "convnet"}, "runtime": {"mixed_precision": "no"}}
    matcher = None
    if recipe.get("matcher"):
        matcher = build_matcher(registry, recipe["matcher"], "the generator's recipe.matcher")[1]
    _, ctx = open_task(doc, registry, overrides=overrides, announce=False, matcher=matcher)
    want = generator.class_names
    if want and list(ctx.task.class_names) != want:
        raise UserError(f"the data opened for generation has classes {ctx.task.class_names[:5]}..., the generator was "
                        f"made for {want[:5]}...; point it at the right data with --set data.root=... or data.classes=...")
    return ctx


def generate_file(folder: str | Path, ipc: int, output: str | Path, seed: int = 0,
                  options: dict[str, Any] | None = None, overrides: list[str] | None = None,
                  registry: Any = None, force: bool = False) -> Path:
    """Generate ``ipc`` images per class with the generator in ``folder`` into ``output``.

    ``output`` and its picture obey the write rule (``condensery.outputs``): never inside the
    generator folder, never over a file condensery did not write as a set (picture) unless ``force``.
    """
    from .. import __version__
    from ..figures import grid_path_for
    from ..outputs import claim_output
    from .plugins import get_registry

    registry = registry or get_registry()
    if ipc < 1:
        raise UserError(f"--ipc must be at least 1, got {ipc}")
    read_generator_config(folder)  # a missing or foreign generator folder is named first
    claim_output(output, "set", force=force, reads=[folder])
    claim_output(grid_path_for(output), "picture", force=force, reads=[folder], flag="the picture")
    opts = generate_options(registry.get("generator", read_generator_config(folder)["type"]), options)
    import torch

    generator = load_generator(folder, registry)
    ctx = generation_context(generator, seed, overrides, registry) if generator.requires_data(ipc, opts) else None
    t = time.perf_counter()
    synset: SyntheticSet = generator.generate(ipc, seed, ctx, opts)
    seconds = time.perf_counter() - t  # generation alone: no start-up, no data loading
    task = dict(generator.config.get("task") or {})
    if ctx is not None:  # the task actually opened (checked against the stored one) is the authority
        zca = ctx.data.zca.info() if ctx.data.zca is not None else None
        task.update(dataset=ctx.task.dataset, num_classes=ctx.task.num_classes, class_names=ctx.task.class_names,
                    image_shape=list(ctx.task.image_shape), mean=ctx.task.mean, std=ctx.task.std, zca=zca)
    recipe = generator.config.get("recipe") or {}
    synset.metadata.update(
        method=synset.metadata.get("method", generator.name), recipe=recipe.get("name"), ipc=ipc,
        num_classes=task.get("num_classes"), class_names=task.get("class_names"), mean=task.get("mean"),
        std=task.get("std"), seed=seed, generator=str(folder), generator_type=generator.name,
        generate_options=opts.model_dump(mode="json"), generate_seconds=round(seconds, 3),
        task={"dataset": task.get("dataset"), "num_classes": task.get("num_classes"),
              "image_shape": task.get("image_shape"), "model": recipe.get("model")},
        versions={"condensery": __version__, "torch": torch.__version__},
    )
    if task.get("zca"):  # evaluation must whiten real data as the generator's run did
        synset.metadata["zca"] = task["zca"]
    path = synset.save(output)
    save_set_grid(synset, ctx, grid_path_for(path))
    return path


def save_set_grid(synset: SyntheticSet, ctx: RunContext | None, path: Path) -> None:
    """The run's ``grid.png`` for a generated set, next to it (``SET.png``); never fails the command."""
    from ..api.progress import say
    from ..figures import save_grid

    try:
        images, mean, std = synset.images, synset.metadata.get("mean"), synset.metadata.get("std")
        if synset.metadata.get("zca"):
            if ctx is not None and ctx.data.zca is not None:
                images = ctx.data.zca.inverse(images.detach())
            else:  # whitened, and no transform at hand to undo it: show the set's own range
                mean = std = None
        save_grid(images, synset.hard_labels, mean, std, path, class_names=synset.metadata.get("class_names"))
    except Exception as exc:  # noqa: BLE001 -- the set is written; its picture is a convenience
        say(f"warning: could not write {path}: {type(exc).__name__}: {exc}")
