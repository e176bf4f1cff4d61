"""What ``condensery analyze`` starts from: its options, the run's training protocol, and the run itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from condensery import RunContext, SyntheticSet, UserError, open_task
from condensery.data import DSA, crop_flip

SECTIONS = ("substitution", "dynamics", "per-image")


@dataclass
class AnalysisOptions:
    """Budgets of ``condensery analyze``; ``None`` means "as the run's evaluation protocol"."""

    epochs: int | None = None  # training epochs on the set (and on each same-size real subset)
    augment: str | None = None  # override the protocol's augmentation (DSA dominates CPU time)
    runs: int = 2  # seeds per measured accuracy
    long_factor: float = 3.0  # "much longer": epochs x this
    mix: list[int] = field(default_factory=lambda: [10])  # real images per class mixed in
    real_epochs: int = 30  # epochs of the real-data reference run (dynamics, neighbours)
    real_per_class: int | None = None  # cap on real images per class of that run
    checkpoints: int = 20  # checkpoints along it (log-spaced in iterations)
    max_images: int = 10  # distilled images analysed one by one (round-robin over classes)
    neighbors: int = 5  # nearest real images shown per distilled image
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))


@dataclass
class Protocol:
    model: str | None
    epochs: int
    lr: float
    batch_size: int
    momentum: float
    weight_decay: float
    augment: str
    set_lr: float  # lr for the set alone: its learned lr if it has one and the protocol uses it


def protocol_of(plan: Any, synset: SyntheticSet, options: AnalysisOptions) -> Protocol:
    """The run's training protocol (first evaluator with ``epochs``), overridden by options."""
    ev = next((e for e in plan.resolved.get("evaluators", []) if "epochs" in e), {})
    lr = float(ev.get("lr", 0.01))
    learned = synset.lr is not None and ev.get("use_learned_lr", True)
    return Protocol(
        model=ev.get("model"), epochs=int(options.epochs or ev.get("epochs", 300)), lr=lr,
        batch_size=int(ev.get("batch_size", 256)), momentum=float(ev.get("momentum", 0.9)),
        weight_decay=float(ev.get("weight_decay", 5e-4)), augment=options.augment or str(ev.get("augment", "dsa")),
        set_lr=float(synset.lr) if learned else lr,
    )


def augmenter(kind: str, image_shape: tuple[int, ...]):
    """The protocol's batched augmentation; none on vectors stored as 1x1 images."""
    if image_shape[-1] == 1 and image_shape[-2] == 1:
        return None
    return {"dsa": DSA(), "dsa-paper": DSA(variant="paper"), "crop-flip": crop_flip,
            "flip": lambda x, g: crop_flip(x, g, pad=0)}.get(kind)



def load_run(run_dir: Path, registry: Any, overrides: list[str]) -> tuple[Any, RunContext, SyntheticSet]:
    """The run's plan, a RunContext as ``condensery run`` builds it, and its set on the device."""
    for name in ("recipe.yaml", "synthetic.safetensors"):
        if not (run_dir / name).is_file():
            raise UserError(f"'{run_dir}' has no {name}; give a run directory written by `condensery run`")
    plan, ctx = open_task(run_dir / "recipe.yaml", registry, overrides=overrides, needs_synthesizer=True, announce=False)
    synset = SyntheticSet.load(run_dir / "synthetic.safetensors")
    if tuple(synset.images.shape[1:]) != tuple(ctx.task.image_shape):
        raise UserError(f"the set's images are {list(synset.images.shape[1:])} but the recipe's data are "
                        f"{list(ctx.task.image_shape)}; the run directory is inconsistent")
    return plan, ctx, synset.to(ctx.device)
