"""The evaluators' options and the ``vgg11_dd`` model's, importing no torch.

A recipe's ``evaluators`` (and ``model: {name: vgg11_dd, ...}``) are validated against these
classes before any evaluator module is imported (``plugin.py`` registers each with its
options class), so a bad option value is one line without loading torch. Each evaluator
module keeps its class as ``Options`` (so ``condensery_eval.soft_label.SoftLabelOptions`` is
the very class registered).
"""

from __future__ import annotations

from typing import Any, Literal

from condensery import Options
from condensery.models import ModelName, validated_model_spec
from pydantic import Field, PositiveFloat, field_validator, model_validator

#: dsa: condensery's DSA (the default; every recorded result), dsa-paper: the DSA authors' definition
#: (whole-pixel crop, 16x16 cutout at 32 px, align_corners=False; see condensery.data.augment)
Augmentation = Literal["dsa", "dsa-paper", "crop-flip", "flip", "none"]


class TrainProtocol(Options):
    model: ModelName | None = Field(None, description="network to train (default: the task model)")
    runs: int = Field(3, ge=1, description="fresh networks trained; mean ± std over them")
    epochs: int = Field(300, ge=1)
    lr: float = Field(0.01, gt=0, description="used unless the set carries a learned lr")
    lr_grid: list[float] | None = Field(None, description="if set, pick the lr on the validation split")
    use_learned_lr: bool = True
    batch_size: int = Field(256, ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    augment: Augmentation = "dsa"
    sequential: bool = Field(True, description="train stage by stage (S_1, then S_1 ∪ S_2, ...) when the set carries stages")
    random_draws: Literal["one", "per-run"] = Field(
        "per-run", description="random baseline: a fresh class-balanced draw for every network (its ± then "
                               "includes which real images were drawn, large at IPC 1), or one draw trained `runs` times")
    paired: bool = Field(True, description="network r of the synthetic and of the random arm share initialisation, "
                                           "batch order and augmentation stream, so their difference is paired")
    random_lr_factors: list[PositiveFloat] = Field(
        [0.5, 1.0, 2.0], min_length=1, description="when the set brings a learned lr α, the random arm's lr is chosen "
        "on the validation split from α times these factors plus `lr` (never handicapped by α alone)")
    targets: Literal["hard", "stored"] = Field(
        "hard", description="hard: train on the class labels; stored: on the set's own labels (regression "
                            "labels with squared error, soft ones with soft cross-entropy)")


class TeacherOptions(Options):
    model: ModelName | None = Field(None, description="teacher network (default: the task model)")
    model_options: dict[str, Any] = Field(default_factory=dict, description="options of the teacher network, e.g. {width: 32}")
    path: str | None = Field(None, description="load this teacher .safetensors (a condensery teacher file or a bare state dict) instead of training")
    epochs: int = Field(50, ge=1, description="training epochs on the real training split")
    lr: float = Field(0.01, gt=0)
    batch_size: int = Field(256, ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    augment: Augmentation = "crop-flip"
    schedule: Literal["cosine", "step", "none"] = "cosine"
    cache: bool = Field(True, description="keep the trained teacher as .safetensors and reuse it")
    cache_dir: str | None = Field(None, description="where (default $CONDENSERY_CACHE/teachers)")

    @model_validator(mode="after")
    def _model_takes_its_options(self) -> TeacherOptions:
        if self.model is not None:  # (on the task model, model_options are checked when it is built)
            validated_model_spec({"name": self.model, **self.model_options}, "teacher model")
        return self


class SoftLabelOptions(TrainProtocol):
    epochs: int = Field(300, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = Field(0.01, ge=0)
    schedule: Literal["cosine", "step", "none"] = "cosine"
    use_learned_lr: bool = Field(False, description="a learned lr is an SGD lr; off for AdamW")
    augment: Augmentation = "crop-flip"
    temperature: float = Field(4.0, gt=0, description="softmax temperature of the KL loss")
    mix: Literal["none", "mixup", "cutmix"] = "cutmix"
    mix_alpha: float = Field(1.0, gt=0, description="Beta(alpha, alpha) of the mixing ratio")
    # replaces TrainProtocol.targets (hard | stored): this protocol never trains on bare class
    # labels; its choice is where the soft targets come from
    targets: Literal["teacher", "stored"] = Field(  # type: ignore[assignment]
        "teacher", description="teacher: soft targets online; stored: the set's own labels (regression "
                               "labels with squared error)")
    teacher: TeacherOptions = Field(default_factory=TeacherOptions)


#: the protocols cross-arch applies, by name -> their options
PROTOCOL_OPTIONS: dict[str, type[Options]] = {"hard-label": TrainProtocol, "soft-label": SoftLabelOptions}


class CrossArchOptions(Options):
    models: list[str] = Field(default_factory=lambda: ["convnet", "resnet18", "vgg11_dd"], min_length=1,
                              description="registered model names or timm names")
    protocol: dict[str, Any] = Field(default_factory=lambda: {"name": "hard-label"},
                                     description="the evaluator to apply, with its options: {name: hard-label|soft-label, ...}")

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        from condensery import get_registry
        from condensery.models import is_model_name

        registry = get_registry()
        for m in models:
            if not is_model_name(m, registry):
                raise ValueError(f"unknown model '{m}'; use one of {', '.join(registry.names('model'))} or any timm model name")
        return models

    @model_validator(mode="after")
    def _valid_protocol(self) -> CrossArchOptions:
        spec = dict(self.protocol)
        name = spec.pop("name", "hard-label")
        if name not in PROTOCOL_OPTIONS:
            raise ValueError(f"protocol name '{name}' is not one of {', '.join(PROTOCOL_OPTIONS)}")
        if "model" in spec:
            raise ValueError("protocol must not set 'model'; list the networks in 'models'")
        PROTOCOL_OPTIONS[name](**spec)  # raises with the bad key / value
        return self


class RankingOptions(Options):
    hard: TrainProtocol = Field(default_factory=TrainProtocol, description="hard-label protocol (HLR, full data)")
    protocol: Literal["auto", "hard-label", "soft-label"] = Field(
        "auto", description="the method's protocol for IOR/ARS; auto: soft-label for soft-labelled sets")
    soft: SoftLabelOptions = Field(default_factory=SoftLabelOptions, description="soft-label protocol options")
    aug: Augmentation | None = Field(None, description="augmentation of ARS's 'aug' arm (default: the protocol's, or dsa)")
    w: float = Field(0.5, ge=0, le=1)
    gamma: float = Field(0.5, ge=0, le=1)
    full_epochs: int = Field(50, ge=1, description="epochs of the full-data hard-label training")
    full_runs: int = Field(1, ge=1)
    full_accuracy: float | None = Field(None, ge=0, le=1, description="Acc(full real, hard) if already known")
    cache: bool = Field(True, description="cache the full-data accuracy as JSON")
    cache_random: bool = Field(True, description="cache the random arms' results as JSON and reuse them in any run "
                                                 "with the same data, teacher, protocol and subset size")


class SmallVGGOptions(Options):
    """``vgg11_dd`` (``condensery_eval.models``): timm's VGG keywords its factory passes through.

    At 64 px or less the factory replaces timm's MLP head by global pooling + one linear
    layer, so these shape only larger inputs' networks.
    """

    drop_rate: float | None = Field(None, ge=0, lt=1, description="dropout of timm's MLP head (inputs above 64 px)")
    mlp_ratio: float | None = Field(None, gt=0, description="width of timm's MLP head relative to 4096 (inputs above 64 px)")
