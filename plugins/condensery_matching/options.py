"""The options of this plugin's synthesizers and matchers, importing no torch.

A recipe's sections are validated against these classes before any component module is
imported (``plugin.py`` registers each component with its options class), so a bad option
value is one line without loading torch. The component modules import them from here and
keep them as their ``Options`` (so ``condensery_matching.pixel.PixelOptions`` is the very
class registered).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from condensery import GenerateOptions, Options, SynthesizerOptions
from condensery.data import DSA_OPS
from condensery.models import ModelName
from pydantic import Field, model_validator

Distance = Literal["channel-cosine", "mse", "cosine"]
Augment = Literal["auto", "shift", "crop-flip", "none"]


class DSAOptions(Options):
    dsa: bool = Field(True, description="differentiable siamese augmentation on both sides")
    dsa_ops: list[str] = Field(default_factory=lambda: list(DSA_OPS))
    dsa_variant: Literal["condensery", "paper"] = Field(
        "condensery", description="condensery: the default (every recorded result); paper: the DSA authors' "
        "definition (whole-pixel crop, exact-size cutout, align_corners=False)")


class PixelOptions(SynthesizerOptions):
    uses_matcher: ClassVar[bool] = True  # the pixels are optimised against synthesizer.matcher

    iterations: int = Field(1000, ge=0, description="optimisation steps")
    lr: float = Field(1.0, gt=0, description="image learning rate")
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.5, ge=0, lt=1, description="SGD momentum (DC/DM use 0.5)")
    init: Literal["real", "random-subset", "noise"] = Field(
        "real", description="real: a class-balanced real draw of its own; random-subset: exactly the random "
        "baseline's draw (the evaluators' one-draw subset), so synthetic vs random is a paired comparison; noise")
    init_from: str | None = Field(
        None, description="a synthetic set (.safetensors) whose images start the optimisation instead of `init`, "
        "e.g. to continue a finished run for more iterations; same ipc, classes, image shape and whitening")
    log_every: int = Field(50, ge=1)


class MultisizeOptions(PixelOptions):
    prefix_samples: int = Field(
        2, ge=0, description="prefix sizes drawn per step besides the full pool (log-uniform and uniform; adaptive "
                             "trains the one selected prefix, all every size)")
    prefix_sampling: Literal["uniform", "log-uniform", "adaptive", "all"] = Field(
        "log-uniform", description="how each step's prefix sizes are chosen from 1..ipc-1: log-uniform (P(k) ~ 1/k) "
                                   "favours the small prefixes; uniform draws k = 1 only 2/(ipc-1) of the steps; "
                                   "all: every size every step (one forward pass for DM, whose subset terms share "
                                   "the network and the real batch; K-1 terms for matchers that loop over them); "
                                   "adaptive: MDC's most learnable subset, one size per adaptive_period steps, the "
                                   "earlier-selected smaller prefixes frozen")
    adaptive_period: int = Field(
        100, ge=1, description="steps between two selections of prefix_sampling: adaptive (MDC: 100)")
    prefix_weighting: Literal["none", "size"] = Field(
        "none", description="none: every term weighs 1; size: a term of k images per class weighs k (the full pool "
                            "ipc), so under DM each image gets its class-mean gap's gradient instead of 1/k of it "
                            "(a step k times larger: choose the lr anew)")


class PoolGenerateOptions(GenerateOptions):
    """One ``condensery generate`` call of a ``pool`` folder (``--option KEY=VALUE``)."""

    refine_steps: int = Field(0, ge=0, description="pixel steps of the stored matcher from the generated set")
    refine_lr: float | None = Field(None, gt=0, description="lr of refinement and extension (default: the pool run's)")
    extend_iterations: int | None = Field(
        None, ge=1, description="steps that optimise the new images when ipc exceeds the pool (default: the pool run's)")


class DistributionOptions(DSAOptions):
    batch_real: int = Field(256, ge=1, description="real images per class per step")
    model: ModelName | None = Field(None, description="embedding network (default: the task model)")
    chunk: int = Field(
        256, ge=1, description="images per forward pass, real and synthetic (peak memory; the same embeddings bit "
                               "for bit). A network with batch norm embeds each batch at once: its statistics couple it")


class GradientOptions(DSAOptions):
    batch_real: int = Field(256, ge=1, description="real images per class per step")
    outer_loop: int | None = Field(None, ge=1, description="synthesizer steps per network (default by ipc)")
    inner_loop: int | None = Field(None, ge=0, description="epochs the network trains on the synthetic set between steps (default by ipc)")
    net_lr: float = Field(0.01, gt=0, description="lr of the network's inner training")
    net_momentum: float = Field(0.5, ge=0, lt=1)
    batch_train: int = Field(256, ge=1, description="batch size of the inner training")
    distance: Distance = Field("channel-cosine", description="DC's per-channel cosine, or plain mse/cosine")
    model: ModelName | None = Field(None, description="matching network (default: the task model)")


class BNStatsOptions(Options):
    teacher: str | None = Field(
        None, description="teacher .safetensors with its model header (a dwa run's, a cached soft-label teacher); dwa sets its own"
    )
    alpha_bn: float = Field(0.01, ge=0, description="weight of the BN-statistics term")
    var_weight: float = Field(1.0, ge=0, description="lambda_var: variance term weight (SRe2L: 1)")
    first_bn_weight: float = Field(10.0, ge=0, description="m_1: weight of the first BN layer")
    ce_weight: float = Field(1.0, ge=0, description="weight of the cross-entropy term")
    augment: Augment = Field(
        "auto", description="auto: shift for <= 32 px, crop-flip above; applied to synthetic images"
    )
    shift: int = Field(4, ge=0, description="max random shift in pixels (augment: shift)")
    min_scale: float = Field(0.08, gt=0, le=1, description="smallest crop area (augment: crop-flip)")


class TrajectoryOptions(DSAOptions):
    syn_steps: int = Field(20, ge=1, description="N: student SGD steps on synthetic data per iteration")
    expert_epochs: int = Field(2, ge=1, description="M: expert epochs the student's N steps should cover")
    max_start_epoch: int = Field(20, ge=1, description="T+: the start epoch is drawn from [0, T+)")
    lr_init: float = Field(0.01, gt=0, description="α0: initial learned student lr")
    lr_lr: float = Field(1e-5, gt=0, description="learning rate of α")
    lr_min: float = Field(1e-6, gt=0, description="α is projected to at least this after each step")
    batch_syn: int | None = Field(None, ge=1, description="synthetic minibatch per student step (default: all images)")
    checkpoint_unroll: bool = Field(False, description="recompute each unroll step in backward: memory O(N·P), same result")
    experts_dir: str | None = Field(None, description="folder of expert shards (default: <run dir>/experts)")
    num_experts: int = Field(100, ge=1, description="experts used; missing ones are trained first")
    train_epochs: int = Field(50, ge=1, description="epochs each expert trains on real data")
    expert_lr: float = Field(0.01, gt=0, description="expert SGD lr (no momentum, no weight decay)")
    expert_batch: int = Field(256, ge=1)
    expert_dsa: bool = Field(True, description="DSA (per image) while training experts")
    model: ModelName | None = Field(None, description="student/expert network (default: the task model)")

    @model_validator(mode="after")
    def _fits_in_trajectory(self) -> TrajectoryOptions:
        if self.max_start_epoch + self.expert_epochs > self.train_epochs:
            raise ValueError(
                f"max_start_epoch ({self.max_start_epoch}) + expert_epochs ({self.expert_epochs}) "
                f"exceeds train_epochs ({self.train_epochs}); lower them or train longer experts"
            )
        return self


class KRROptions(DSAOptions):
    dsa: bool = Field(False, description="siamese DSA on real and synthetic batches (RFAD: off)")
    num_models: int = Field(8, ge=1, description="M random networks whose features form the kernel")
    resample_every: int = Field(5, ge=1, description="redraw the random networks every this many steps")
    width: int | None = Field(1024, ge=1, description="width of the random ConvNets (None: the task model's)")
    model: ModelName | None = Field(None, description="feature network (default: the task model)")
    batch_real: int = Field(64, ge=1, description="real images per class per step")
    reg: float = Field(1e-6, gt=0, description="ridge λ relative to tr(K_ss)/n_s")
    learn_labels: bool = Field(False, description="learn the support labels alongside the pixels")
    label_lr: float = Field(1e-3, gt=0, description="lr of the learned labels")
