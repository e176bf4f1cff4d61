"""The ``dwa`` synthesizer's and the ``diversity`` evaluator's options, importing no torch.

A recipe is validated against them before either module is imported (``plugin.py``
registers both with their options class).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from condensery import Options, SynthesizerOptions
from condensery.models import ModelSpec
from pydantic import Field


class DWAOptions(SynthesizerOptions):
    uses_matcher: ClassVar[bool] = False  # its BN-statistics matcher is its own, built from these options

    # squeeze
    teacher: str | None = Field(None, description="load this teacher .safetensors instead of training one")
    teacher_model: ModelSpec = Field(
        default_factory=lambda: {"name": "resnet18"},
        description="teacher spec {name, **options}; needs BatchNorm (resnet18, convnet_bn)",
    )
    teacher_epochs: int = Field(200, ge=1)
    teacher_lr: float = Field(0.1, gt=0)
    teacher_batch_size: int = Field(128, ge=1)
    teacher_weight_decay: float = Field(5e-4, ge=0)
    teacher_augment: Literal["crop-flip", "crop", "none"] = "crop-flip"
    # directed weight adjustment
    rho: float = Field(0.015, ge=0, description="norm budget of the weight perturbation (0: SRe2L)")
    steps: int = Field(12, ge=1, description="K: normalised ascent steps per batch")
    # recover
    iterations: int = Field(1000, ge=0)
    lr: float = Field(0.25, gt=0, description="Adam lr (cosine to 0)")
    init: Literal["real", "noise"] = "real"
    alpha_bn: float = Field(0.01, ge=0)
    var_weight: float = Field(1.0, ge=0, description="decoupled variance weight lambda_var (SRe2L: 1)")
    first_bn_weight: float = Field(10.0, ge=0)
    augment: Literal["auto", "shift", "crop-flip", "none"] = "auto"
    shift: int = Field(4, ge=0)
    classes_per_batch: int | None = Field(None, ge=1, description="classes per batch (default: all)")
    # relabel
    temperature: float = Field(20.0, gt=0, description="T of the stored soft labels")
    log_every: int = Field(100, ge=1)


class DiversityOptions(Options):
    teacher: str | None = Field(
        None, description="teacher .safetensors (default: the set's metadata teacher, else RUN_DIR/teacher.safetensors)"
    )
