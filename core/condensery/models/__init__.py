"""Models: the DD ConvNet family (registered into timm) and a factory over timm."""

from .convnet import ConvNet
from .embed import embed, embed_batched
from .factory import (
    SMALL_STEMS,
    StemRule,
    adapt_small_stem,
    create_timm_model,
    model_factory,
    model_family,
)

__all__ = ["ConvNet", "embed", "embed_batched", "SMALL_STEMS", "StemRule", "adapt_small_stem", "create_timm_model",
           "model_factory", "model_family"]
