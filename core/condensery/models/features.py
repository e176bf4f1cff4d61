"""Penultimate-layer features of any timm-style model."""

from __future__ import annotations

import torch
import torch.nn as nn


def embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Features before the classifier (timm's ``forward_head(pre_logits=True)``), flattened."""
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        return model.forward_head(model.forward_features(x), pre_logits=True).flatten(1)
    return model(x).flatten(1)


@torch.no_grad()
def embed_batched(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``embed`` over a large tensor in chunks, without gradients."""
    return torch.cat([embed(model, x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
