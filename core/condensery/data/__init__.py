"""The data service: the built-in dataset sources, their cache, and augmentation.

The sources (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``imagefolder``,
``tensors``, ``huggingface``) are registered by reference in ``condensery.builtins``, through
the same entry-point group as any plugin's, with their options in ``data.options`` (no torch).
What a plugin may use of this package is ``__all__``: batched differentiable augmentation
(``DSA``, its ``AugParams`` and ``DSA_OPS``; ``crop_flip``), the cache folder (``cache_dir``)
and ``load_raw`` (a source's decoded splits, cached). ``RealData`` is the contract's
(``condensery.RealData``).
"""

from __future__ import annotations

from ..api._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".augment": ("DSA", "AugParams", "crop_flip"),
    ".options": ("DSA_OPS",),
    ".realdata": ("cache_dir", "load_raw"),
})
