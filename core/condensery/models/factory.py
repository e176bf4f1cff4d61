"""create_model: a registered model factory, or any timm model by name, with explicit small-image stems.

timm's zoo is built for ImageNet (224 px): its stems shrink the input 4x before the first
stage, which leaves a 32 px image with an 8x8 map there and a 1x1 map before the head. With
``small_stem: auto`` (the default) a zoo model at 64 px or less gets the small-image stem of
its *family* from ``SMALL_STEMS``: every stride of the stem becomes 1, the rest of the network
is timm's. The distillation literature's CIFAR ResNet is the ``resnet`` rule; the others
follow it, so each family keeps its stage-wise downsampling (32 px -> a 4x4 map for resnet
and convnext, 2x2 for efficientnet and mobilenetv3). A zoo family with no rule is refused in
one line (never silently left with its ImageNet stem); ``small_stem: false`` keeps timm's
network unchanged for any model, ``small_stem: true`` applies the rule at any size. Models
registered into timm from outside its zoo (the DD ConvNets, a plugin's networks) are small-
image networks by design and are built as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from ..api.errors import UserError

SMALL_STEM_MAX_PX = 64  # ``small_stem: auto`` adapts inputs of this size or less


@dataclass(frozen=True)
class StemRule:
    """How one family's ImageNet stem becomes a small-image (stride-1) stem."""

    what: str  # one line, as the README states it
    adapt: Callable[[nn.Module, int, str], None]  # (model, in_chans, model name), in place


def _refuse(name: str, what: str) -> UserError:
    return UserError(f"model '{name}': {what}; set `small_stem: false` in the model spec to keep timm's ImageNet stem")


def _stride_one(conv: nn.Conv2d) -> None:
    """Stride 1 keeping the weights: timm's 3x3 stems pad by 1 at stride 1 and 2 alike."""
    conv.stride = (1, 1)


def _resnet(model: nn.Module, in_chans: int, name: str) -> None:
    conv1, pool = model.conv1, model.maxpool
    if isinstance(conv1, nn.Conv2d) and conv1.kernel_size[0] > 3:
        # the CIFAR ResNet: a fresh 3x3 stride-1 conv (PyTorch's default init, as condensery always did)
        model.conv1 = nn.Conv2d(in_chans, conv1.out_channels, 3, 1, 1, bias=False)
    elif isinstance(conv1, nn.Conv2d):
        _stride_one(conv1)
    elif isinstance(conv1, nn.Sequential) and isinstance(conv1[0], nn.Conv2d):  # deep stem (resnet*d, *t, rs)
        _stride_one(conv1[0])
    else:
        raise _refuse(name, f"resnet stem {type(conv1).__name__} is not one the small-image rule knows")
    convs = [m for m in pool.modules() if isinstance(m, nn.Conv2d)] if isinstance(pool, nn.Sequential) else []
    if convs:  # replace_stem_pool variants (resnetrs): a strided conv stands in for the max-pool
        for conv in convs:
            _stride_one(conv)
    else:
        model.maxpool = nn.Identity()


def _conv_stem(family: str) -> Callable[[nn.Module, int, str], None]:
    def adapt(model: nn.Module, in_chans: int, name: str) -> None:
        if not isinstance(model.conv_stem, nn.Conv2d):
            raise _refuse(name, f"{family} stem {type(model.conv_stem).__name__} is not one the small-image rule knows")
        _stride_one(model.conv_stem)

    return adapt


def _convnext(model: nn.Module, in_chans: int, name: str) -> None:
    stem = model.stem
    convs = [(i, m) for i, m in enumerate(stem) if isinstance(m, nn.Conv2d)] if isinstance(stem, nn.Sequential) else []
    if not convs:
        raise _refuse(name, f"convnext stem {type(stem).__name__} is not one the small-image rule knows")
    for i, conv in convs:
        if conv.kernel_size[0] == conv.stride[0] > 1:
            # the 4x4 stride-4 patchify conv: at stride 1 a 4x4 kernel cannot pad symmetrically,
            # so it becomes a 3x3 stride-1 conv (the resnet rule's stem), initialised as timm inits ConvNeXt
            new = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=conv.bias is not None)
            nn.init.trunc_normal_(new.weight, std=0.02)
            if new.bias is not None:
                nn.init.zeros_(new.bias)
            stem[i] = new
        else:  # the overlapping stems (*_ols): 3x3 stride-2 convs keep their weights at stride 1
            _stride_one(conv)


def _unchanged(model: nn.Module, in_chans: int, name: str) -> None:
    """Already a small-image network."""


SMALL_STEMS: dict[str, StemRule] = {
    "resnet": StemRule("a 7x7 stride-2 conv1 becomes a 3x3 stride-1 conv (a deep stem's first conv and "
                       "resnetrs's pool conv get stride 1); the max-pool is removed", _resnet),
    "efficientnet": StemRule("conv_stem (3x3) stride 2 -> 1, weights kept", _conv_stem("efficientnet")),
    "mobilenetv3": StemRule("conv_stem (3x3) stride 2 -> 1, weights kept", _conv_stem("mobilenetv3")),
    "convnext": StemRule("the 4x4 stride-4 patchify conv becomes a 3x3 stride-1 conv (overlapping *_ols "
                         "stems: stride 1, weights kept)", _convnext),
    "convnet": StemRule("nothing: the DD ConvNets are small-image networks", _unchanged),
}


def model_family(name: str) -> tuple[str, bool]:
    """The timm module that defines ``name`` (its family) and whether it is from timm's own zoo."""
    from timm.models import get_arch_name, model_entrypoint

    module = model_entrypoint(get_arch_name(name)).__module__
    return module.rsplit(".", 1)[-1], module.startswith("timm.")


def _wants_small_stem(name: str, small_stem: Any, img_size: int) -> bool:
    if small_stem is True or small_stem is False:
        return small_stem
    if small_stem != "auto":
        raise UserError(f"model '{name}': small_stem is {small_stem!r}; use auto, true or false")
    return img_size <= SMALL_STEM_MAX_PX


def adapt_small_stem(model: nn.Module, family: str, in_chans: int, name: str = "model") -> None:
    """Give ``model`` (of timm family ``family``) its small-image stem, in place, by ``SMALL_STEMS``."""
    rule = SMALL_STEMS.get(family)
    if rule is None:
        raise UserError(f"model '{name}' (timm family '{family}') has no small-image stem rule; set `small_stem: false` "
                        f"to keep its ImageNet stem, or use a family with one ({', '.join(SMALL_STEMS)})")
    rule.adapt(model, in_chans, name)


def create_timm_model(
    name: str, num_classes: int, in_chans: int, img_size: int, small_stem: bool | str = "auto", **options: Any
) -> nn.Module:
    import timm

    from . import convnet  # noqa: F401  (registers the DD ConvNets into timm)

    if not timm.is_model(name):
        raise UserError(f"unknown model '{name}'; use a registered model (see `condensery plugins`) or a timm model name")
    family, zoo = model_family(name)
    adapt = _wants_small_stem(name, small_stem, img_size)
    if adapt and family not in SMALL_STEMS and (zoo or small_stem is True):
        hint = "; `vgg11_dd` is condensery's small-image VGG-11" if family == "vgg" else ""
        raise UserError(
            f"model '{name}' is timm's ImageNet-style '{family}' family, which has no small-image stem rule "
            f"for {img_size} px inputs; set `small_stem: false` in the model spec to keep its ImageNet stem, "
            f"or use a family with one ({', '.join(SMALL_STEMS)}){hint}")
    kwargs = dict(options)
    if family == "convnet":
        kwargs["img_size"] = img_size
    try:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    except TypeError as exc:
        raise UserError(f"model '{name}' rejected its options {sorted(options)}: {exc}") from None
    if adapt and family in SMALL_STEMS:
        adapt_small_stem(model, family, in_chans, name)
    return model


def model_factory(name: str):
    """A factory for ``name`` suitable for the ``register_models`` hook."""

    def factory(num_classes: int, in_chans: int, img_size: int, **options: Any) -> nn.Module:
        return create_timm_model(name, num_classes, in_chans, img_size, **options)

    factory.__doc__ = f"timm model '{name}' (its family's small-image stem at {SMALL_STEM_MAX_PX} px or less)"
    return factory
