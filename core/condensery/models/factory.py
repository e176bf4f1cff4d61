"""create_model: a registered model factory, or any timm model by name.

timm models built for ImageNet get a small-image stem for inputs of 64 px or less
(3x3 stride-1 first conv, no max-pool) when ``small_stem`` is left on ``auto`` — the
CIFAR variant used throughout the distillation literature.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..errors import UserError


def adapt_small_stem(model: nn.Module, in_chans: int) -> bool:
    """Swap an ImageNet stem for a CIFAR one where the architecture has a known stem."""
    conv1 = getattr(model, "conv1", None)
    if isinstance(conv1, nn.Conv2d) and conv1.kernel_size[0] > 3:
        model.conv1 = nn.Conv2d(in_chans, conv1.out_channels, 3, 1, 1, bias=False)
        if hasattr(model, "maxpool"):
            model.maxpool = nn.Identity()
        return True
    return False


def create_timm_model(
    name: str, num_classes: int, in_chans: int, img_size: int, small_stem: bool | str = "auto", **options: Any
) -> nn.Module:
    import timm

    from . import convnet  # noqa: F401  (registers the DD ConvNets into timm)

    if not timm.is_model(name):
        raise UserError(f"unknown model '{name}'; use a registered model (see `condensery plugins`) or a timm model name")
    kwargs = dict(options)
    if name.startswith("convnet"):
        kwargs["img_size"] = img_size
    try:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    except TypeError as exc:
        raise UserError(f"model '{name}' rejected its options {sorted(options)}: {exc}") from None
    if (small_stem is True) or (small_stem == "auto" and img_size <= 64):
        adapt_small_stem(model, in_chans)
    return model


def model_factory(name: str):
    """A factory for ``name`` suitable for the ``register_models`` hook."""

    def factory(num_classes: int, in_chans: int, img_size: int, **options: Any) -> nn.Module:
        return create_timm_model(name, num_classes, in_chans, img_size, **options)

    factory.__doc__ = f"timm model '{name}' (small-image stem below 64 px)"
    return factory
