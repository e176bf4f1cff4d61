"""The ConvNet family of the dataset-distillation literature, registered into timm.

``depth`` blocks of Conv3x3(width) -> norm -> ReLU -> pool, then a linear classifier.
``instancenorm`` is GroupNorm with one group per channel (affine), as the DC/DSA/DM/MTT
code does. 28x28 inputs get padding 3 in the first conv so they pool like 32x32.
After ``import condensery.models`` it is ``timm.create_model("convnet", ...)``, built by
timm's ``build_model_with_cfg`` with a default ``pretrained_cfg`` (no weights: ``url`` empty;
``input_size``/``mean``/``std`` are CIFAR-10's, for timm's data config — condensery itself
normalises with the statistics of the task's own training split). ``features_only=True``
returns timm's ``FeatureListNet`` with one NCHW map per block (after its pool).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "instancenorm":
        return nn.GroupNorm(width, width, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(width)
    if kind == "layernorm":
        return nn.GroupNorm(1, width, affine=True)
    if kind == "groupnorm":
        return nn.GroupNorm(min(4, width), width, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; use instancenorm, batchnorm, layernorm, groupnorm or none")


def _pool(kind: str) -> nn.Module:
    if kind == "avgpooling":
        return nn.AvgPool2d(2, 2)
    if kind == "maxpooling":
        return nn.MaxPool2d(2, 2)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown pooling '{kind}'; use avgpooling, maxpooling or none")


class ConvNet(nn.Module):
    """DD ConvNet with timm's model interface (``forward_features`` / ``forward_head``)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int | tuple[int, int] = 32,
        depth: int = 3,
        width: int = 128,
        norm: str = "instancenorm",
        pooling: str = "avgpooling",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be at least 1, got depth {depth}, width {width}")
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        layers: list[nn.Module] = []
        self.feature_info: list[dict] = []  # timm's per-block feature description (features_only)
        c, reduction = in_chans, 1
        for d in range(depth):
            pad = 3 if d == 0 and (h, w) == (28, 28) else 1
            layers += [nn.Conv2d(c, width, 3, padding=pad), _norm(norm, width), _activation(activation)]
            if d == 0 and pad == 3:
                h, w = h + 4, w + 4
            if pooling != "none" and min(h, w) >= 2:
                layers.append(_pool(pooling))
                h, w = h // 2, w // 2
                reduction *= 2
            c = width
            self.feature_info.append({"num_chs": width, "reduction": reduction, "module": f"features.{len(layers) - 1}"})
        self.features = nn.Sequential(*layers)
        self.num_features = width * h * w
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


def _activation(kind: str) -> nn.Module:
    # in place, as the DD reference ConvNet: a block then keeps one activation less for the
    # backward pass (the norm needs its input, not its output), the same numbers bit for bit
    acts = {"relu": lambda: nn.ReLU(inplace=True), "leakyrelu": lambda: nn.LeakyReLU(0.01, inplace=True),
            "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
    if kind not in acts:
        raise ValueError(f"unknown activation '{kind}'; use {', '.join(acts)}")
    return acts[kind]()


# CIFAR-10's full training set, per channel over every pixel (how RealData computes its own).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _cfg(input_size: tuple[int, int, int] = (3, 32, 32)) -> dict:
    return {
        "url": "", "num_classes": 10, "input_size": input_size, "pool_size": None, "fixed_input_size": True,
        "interpolation": "bilinear", "crop_pct": 1.0, "mean": CIFAR10_MEAN, "std": CIFAR10_STD,
        "first_conv": "features.0", "classifier": "head",
    }


default_cfgs = generate_default_cfgs({
    "convnet": _cfg(),
    "convnet_d4": _cfg((3, 64, 64)),
    "convnet_bn": _cfg(),
})


def _build(variant: str, pretrained: bool, defaults: dict, kwargs: dict) -> ConvNet:
    if pretrained:
        raise ValueError("DD ConvNets have no pretrained weights; use pretrained=False")
    kwargs = {**defaults, **kwargs}
    depth = kwargs.get("depth", 3)
    # every block is a feature level; flatten_sequential lets timm reach the blocks inside ``features``
    feature_cfg = {"out_indices": tuple(range(depth)) if isinstance(depth, int) else (), "flatten_sequential": True}
    return build_model_with_cfg(ConvNet, variant, pretrained, feature_cfg=feature_cfg, **kwargs)


@register_model
def convnet(pretrained: bool = False, **kwargs) -> ConvNet:
    """ConvNet-3, width 128, instance norm, average pooling (the DD default)."""
    return _build("convnet", pretrained, {}, kwargs)


@register_model
def convnet_d4(pretrained: bool = False, **kwargs) -> ConvNet:
    """ConvNet-4, used for 64x64 data (Tiny-ImageNet)."""
    return _build("convnet_d4", pretrained, {"depth": 4}, kwargs)


@register_model
def convnet_bn(pretrained: bool = False, **kwargs) -> ConvNet:
    """ConvNet-3 with batch norm (BN-statistics matching needs running statistics)."""
    return _build("convnet_bn", pretrained, {"norm": "batchnorm"}, kwargs)
