"""The ``mgdd`` synthesizer's options, importing no torch (a recipe is validated against them first).

Besides what every mode uses, they come in sections, one per stage that reads them:
``architecture`` (a fresh generator's network), ``meta`` (meta-training), ``adapt``
(adaptation) and ``labels`` (the closed-form label solve), e.g.
``--set synthesizer.meta.steps=5``. ``MGDDOptions.renamed`` maps the keys of the earlier
flat options to these, so a recipe still using one fails naming its new key.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from condensery import GenerateOptions, Options, SynthesizerOptions
from pydantic import Field, model_validator


class ArchitectureOptions(Options):
    """A fresh generator's network (meta-train without ``generator``; a saved one keeps its own)."""

    resolution: int = Field(32, ge=8, description="working resolution images are resized to")
    working_channels: int = Field(3, ge=1, description="channels inside the refiner")
    block_out_channels: list[int] = Field(default_factory=lambda: [32, 64], description="UNet2DModel widths")
    layers_per_block: int = Field(1, ge=1)
    context_pool: int = Field(4, ge=1, description="class prototypes are pooled to this size")
    gradient_input: bool = Field(
        False, description="the refiner also reads the normalised matcher-loss gradient at X0 (draw-specific "
                          "information)")
    refine_steps: int = Field(
        0, ge=0, description="0: one-shot residual; T: unrolled refiner, T learned Adam-direction steps along the "
                             "matcher gradient plus a UNet correction")
    refine_lr: float = Field(0.1, gt=0, description="the unrolled refiner's initial step size (Adam lr equivalent)")

    @model_validator(mode="after")
    def _one_refiner(self) -> ArchitectureOptions:
        if self.gradient_input and self.refine_steps:
            raise ValueError("gradient_input and refine_steps exclude each other (the unrolled refiner reads its own "
                             "gradients); set one of them")
        return self


class MetaOptions(Options):
    """Reptile meta-training (``mode: meta-train``) over random sub-tasks of the recipe's dataset."""

    steps: int = Field(100, ge=0, description="outer (Reptile) steps")
    batch: int = Field(2, ge=1, description="sub-tasks per outer step (split over processes)")
    lr: float = Field(1e-3, gt=0, description="Adam lr of the outer update")
    inner_steps: int = Field(3, ge=1, description="Adam steps on a sub-task before the outer update")
    inner_lr: float = Field(1e-3, gt=0)
    task_ipcs: list[int] = Field(default_factory=lambda: [1, 2, 5, 10, 20], description="ipc of sub-tasks, drawn uniformly")
    task_min_classes: int = Field(2, ge=2, description="smallest class subset of a sub-task")
    task_max_classes: int | None = Field(None, ge=2, description="largest class subset (default: all)")


class AdaptOptions(Options):
    """Adaptation (``mode: adapt``): Adam steps on the recipe's dataset."""

    steps: int = Field(20, ge=0, description="Adam steps on the target dataset")
    lr: float = Field(1e-3, gt=0)
    ipcs: list[int] | None = Field(None, description="ipc of the initial sets drawn while adapting (default: [ipc])")
    batch: int = Field(1, ge=1, description="initial sets per adaptation step (split over processes)")
    draws: int = Field(0, ge=0, description="0: a fresh initial set every step; n: cycle through n fixed draws")


class LabelOptions(Options):
    """The closed-form KRR label solve, in a random-feature space of its own."""

    krr: bool = Field(True, description="support labels of the krr matcher: closed-form KRR solve on X0")
    models: int = Field(2, ge=1, description="random ConvNets of the label-solve feature space")
    width: int = Field(128, ge=1)
    batch_real: int = Field(64, ge=1, description="real images per class in the label solve")
    reg: float = Field(1e-6, gt=0)
    set: Literal["hard", "krr"] = Field("hard", description="labels stored in the set: classes or the KRR solve")


class MGDDOptions(SynthesizerOptions):
    uses_matcher: ClassVar[bool] = True  # the generator trains against synthesizer.matcher
    renamed: ClassVar[dict[str, str]] = {
        **{k: f"architecture.{k}" for k in ArchitectureOptions.model_fields},
        **{f"meta_{k}": f"meta.{k}" for k in ("steps", "batch", "lr")},
        **{k: f"meta.{k}" for k in ("inner_steps", "inner_lr", "task_ipcs", "task_min_classes", "task_max_classes")},
        **{f"adapt_{k}": f"adapt.{k}" for k in AdaptOptions.model_fields},
        "krr_labels": "labels.krr", "set_labels": "labels.set",
        **{f"label_{k}": f"labels.{k}" for k in ("models", "width", "batch_real", "reg")},
    }

    mode: Literal["meta-train", "adapt", "generate"] = Field("adapt", description="what to do with the generator")
    generator: str | None = Field(None, description="generator folder to start from (required for adapt/generate)")
    # training the generator, meta-train and adapt alike
    step_lr_scale: float = Field(
        10.0, gt=0, description="the unrolled refiner's step sizes train at this multiple of every lr (few parameters, "
                                "each worth a whole schedule)")
    loss_dsa: bool = Field(
        False, description="train the generator on the matcher's loss under siamese DSA (the gradients an unrolled "
                           "refiner steps along stay the matcher's own): a refinement must survive augmentation")
    log_every: int = Field(10, ge=1)
    architecture: ArchitectureOptions = Field(default_factory=ArchitectureOptions,
                                              description="a fresh generator's network")
    meta: MetaOptions = Field(default_factory=MetaOptions, description="meta-training")
    adapt: AdaptOptions = Field(default_factory=AdaptOptions, description="adaptation")
    labels: LabelOptions = Field(default_factory=LabelOptions, description="the closed-form label solve")


class MGDDGenerateOptions(GenerateOptions):
    """One ``condensery generate`` call of an ``mgdd`` folder (``--option KEY=VALUE``)."""

    labels: Literal["hard", "krr"] = Field("hard", description="class labels, or the closed-form KRR labels (regression targets)")
    initial: bool = Field(False, description="write the initial real draw X0, unrefined (the paired random subset)")
    refine_steps: int = Field(0, ge=0, description="then pixel steps of the stored matcher from the generated set")
    refine_lr: float = Field(0.1, gt=0, description="lr of those steps")
    refine_optimizer: Literal["adam", "sgd"] = Field("adam", description="optimiser of those steps (Adam betas 0.5, 0.9)")
