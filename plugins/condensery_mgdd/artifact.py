"""The ``mgdd`` generator type: the meta generator's folder as the core's Generator contract.

``condensery generate DIR --ipc N`` on an mgdd folder opens the task the generator was last
adapted to (it refines real images, so it always needs the data), draws X0 as the random
subset of the seed, refines it, and labels it with classes or the closed-form KRR solve
(``--option labels=krr``; the random arm of an evaluation then gets its own solve).
``--option initial=true`` writes X0 itself; ``--option refine_steps=T`` takes T pixel steps
of the stored matcher afterwards (``options.MGDDGenerateOptions``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from condensery import Generator, RunContext, SyntheticSet, UserError
from condensery.generators import load_generator, save_generator

from .generator import MetaGenerator, network_from_folder
from .options import MGDDGenerateOptions


class MGDDGenerator(Generator):
    """A meta generator network plus what generation needs (task, recipe, label-solve options)."""

    Options: ClassVar[type[MGDDGenerateOptions]] = MGDDGenerateOptions

    def __init__(self, config: dict[str, Any], net: MetaGenerator) -> None:
        super().__init__(config)
        self.net = net

    def requires_data(self, ipc: int, options: MGDDGenerateOptions) -> bool:
        return True  # it refines real images of the dataset it was adapted to

    def generate(self, ipc: int, seed: int = 0, ctx: RunContext | None = None,
                 options: MGDDGenerateOptions | None = None) -> SyntheticSet:
        from condensery_matching import refine_images

        from .generation import generate_set
        from .tasks import KRRLabeler

        o = options or self.Options()
        if ctx is None:
            raise UserError("the mgdd generator refines real images; generate through `condensery generate`")
        net = self.net.to(ctx.device)
        if net.add_channels(ctx.task.image_shape[0]):
            ctx.runtime.say(f"  new {ctx.task.image_shape[0]}-channel adapters (untrained: adapt the generator first)")
        lab = self.config.get("labels", {})
        labeler = None
        if o.labels == "krr":
            labeler = KRRLabeler(ctx, lab.get("models", 2), lab.get("width", 128), lab.get("batch_real", 64),
                                 lab.get("reg", 1e-6))
        synset = generate_set(net, ctx, ipc, seed, o.labels, labeler, refine=not o.initial, matcher=ctx.matcher)
        if o.refine_steps:
            images = refine_images(ctx, ctx.matcher, synset.images.to(ctx.device), synset.hard_labels.to(ctx.device),
                                   o.refine_steps, o.refine_lr, o.refine_optimizer)
            synset = SyntheticSet(images.detach(), synset.labels, synset.lr, synset.stages, synset.stage_lrs,
                                  synset.metadata)
        synset.metadata["method"] = "random" if o.initial and not o.refine_steps else "mgdd"
        return synset

    def save_weights(self, folder: Path) -> dict[str, Any]:
        state_net = self.net.to("cpu")
        state_net.save_pretrained(str(folder), safe_serialization=True)
        return {}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> MGDDGenerator:
        return cls(config, network_from_folder(folder, config))


def save_meta_generator(net: MetaGenerator, folder: str | Path, info: dict[str, Any]) -> Path:
    """Write ``net`` with ``info`` (task, recipe, labels, history) as an ``mgdd`` generator folder."""
    device = next(net.parameters()).device
    path = save_generator(MGDDGenerator(info, net), folder, info)
    net.to(device)
    return path


def load_meta_generator(folder: str | Path, device: torch.device | str = "cpu") -> tuple[MetaGenerator, dict[str, Any]]:
    """The network of an ``mgdd`` folder (on ``device``) and its config."""
    gen = load_generator(folder)
    if not isinstance(gen, MGDDGenerator):
        raise UserError(f"'{folder}' holds a generator of type '{gen.config['type']}', not an mgdd meta generator; "
                        "pass the generator/ folder of an mgdd run")
    return gen.net.to(device), gen.config
