"""The two-layer network of the multi-index task: ``x -> a(W1 x + b1) -> W2 h + b2``.

Inputs of any shape are flattened, so the same model trains on vectors stored as
``[d,1,1]`` (``in_chans = d``) and on small images (digits: 1x8x8 = 64 inputs). It has
timm's ``forward_features`` / ``forward_head(pre_logits=True)`` split, so ``embed``, DM and
KRR see the hidden layer as the feature layer.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .options import MLPOptions

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class TwoLayerMLP(nn.Module):
    def __init__(self, num_classes: int, in_features: int, width: int = 64, activation: str = "relu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got '{activation}'")
        if width < 1:
            raise ValueError(f"width must be at least 1, got {width}")
        self.fc1 = nn.Linear(in_features, width)
        self.act = ACTIVATIONS[activation]()
        self.head = nn.Linear(width, num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc1(x.flatten(1)))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return features if pre_logits else self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def mlp_factory(num_classes: int, in_chans: int, img_size: int, width: int = 64, activation: str = "relu") -> nn.Module:
    """``register_models`` factory: square ``in_chans x img_size x img_size`` inputs, flattened."""
    return TwoLayerMLP(num_classes, in_chans * img_size * img_size, width, activation)


mlp_factory.Options = MLPOptions  # what a recipe's model spec may give (registered with it)
