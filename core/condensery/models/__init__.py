"""The models service: the DD ConvNets (registered into timm), timm with small-image stems, model options.

The built-in model names (``convnet``, ``convnet_d4``, ``convnet_bn``, ``resnet18``) are
registered by reference in ``condensery.builtins``; any other timm name works too. A network is
built through the registry (``ctx.create_model()``, ``ctx.build_model(spec)``). What a plugin
may use of this package is ``__all__``: penultimate features (``embed``, ``embed_batched``) and,
for options classes without torch, fields that hold a model (``ModelName``, ``ModelSpec``) and
their checks (``is_model_name``, ``validated_model_name``, ``validated_model_spec``).
"""

from __future__ import annotations

from ..api._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".features": ("embed", "embed_batched"),
    ".options": ("ModelName", "ModelSpec", "is_model_name", "validated_model_name", "validated_model_spec"),
})
