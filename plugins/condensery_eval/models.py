"""``vgg11_dd``: VGG-11 for small images, the cross-architecture network of the distillation literature.

It has its own name: ``vgg11`` is timm's ImageNet network, unchanged (five max-pools and
a 7x7-conv MLP head of 4096 units). At 32x32 that head is ~100M parameters on a 1x1 map,
and below 32 px the pools run out of pixels. For inputs of 64 px or less this factory keeps timm's feature layers, drops
the pools that would leave a convolution on a 1x1 map (8x8 digits keep three of five; a
3x3 kernel on one pixel starves the signal and the network does not train), and replaces
the head by global pooling + one linear layer over the 512 features (the CIFAR VGG-11 of
the DC/DSA/DM benchmarks). Larger inputs get timm's network unchanged.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from .options import SmallVGGOptions


def small_vgg_factory(name: str):
    """A ``register_models`` factory: timm's VGG ``name`` with the small-image changes above."""

    def factory(num_classes: int, in_chans: int, img_size: int, **options: Any) -> nn.Module:
        import timm
        from timm.layers import ClassifierHead

        try:
            model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **options)
        except TypeError as exc:
            from condensery import UserError

            raise UserError(f"model '{name}' rejected its options {sorted(options)}: {exc}") from None
        if img_size > 64:
            return model
        size = int(img_size)
        layers = list(model.features)
        for i, layer in enumerate(layers):
            if not isinstance(layer, nn.MaxPool2d):
                continue
            conv_follows = any(isinstance(later, nn.Conv2d) for later in layers[i + 1 :])
            # no conv may run on a 1x1 map: its 3x3 kernel would see one pixel of nine
            if size >= 2 and (size // 2 >= 2 or not conv_follows):
                size //= 2
            else:
                model.features[i] = nn.Identity()
        model.pre_logits = nn.Identity()
        model.head = ClassifierHead(model.num_features, num_classes, pool_type="avg")
        model.head_hidden_size = model.num_features
        return model

    factory.__doc__ = f"timm '{name}' with a small-image head (global pool + linear) at 64 px or less"
    return factory


#: the factory ``register_models`` names by reference (``condensery_eval.models:vgg11_dd``)
vgg11_dd = small_vgg_factory("vgg11")
vgg11_dd.Options = SmallVGGOptions  # what a recipe's spec may give (registered with it)
