"""Pixel synthesis and the matching objectives (distribution, gradient, trajectory, ...).

Public to other plugins: ``refine_images`` (a few matcher steps on chosen rows of a set,
what every any-size generator's ``--refine-steps`` runs).
"""

from .refine import refine_images

__all__ = ["refine_images"]
