"""Pixel synthesis and the matching objectives (distribution, gradient, trajectory, ...).

Public to other plugins: ``refine_images`` (a few matcher steps on chosen rows of a set,
what every any-size generator's ``--refine-steps`` runs). Imported on first use, so that
loading the plugin (``condensery --help``) does not import torch.
"""

from typing import Any

__all__ = ["refine_images"]


def __getattr__(name: str) -> Any:
    if name == "refine_images":
        from .refine import refine_images

        return refine_images
    raise AttributeError(f"module 'condensery_matching' has no attribute {name!r}")
