"""Pixel synthesis and the matching objectives (distribution, gradient, trajectory, ...).

Public to other plugins (``PUBLIC_MODULES``; everything else here is private and may change):

- ``condensery_matching.refine_images``: a few matcher steps on chosen rows of a set, what
  every any-size generator's ``refine_steps`` option runs (MGDD);
- ``condensery_matching.pixel``: ``PixelSynthesizer`` / ``PixelOptions``, the loop a
  synthesizer that optimises pixels against a matcher subclasses (SeqMatch);
- ``condensery_matching.options``: the same options classes without torch (``PixelOptions``,
  ``KRROptions``, ...), for another plugin's options that extend them (SeqMatch);
- ``condensery_matching.experts``: the expert-trajectory file format (``ExpertSpec``,
  ``write_expert``, ``read_header``, ...), for methods that train or read experts (SeqMatch);
- ``condensery_matching.krr``: ``KRRMatcher`` / ``KRROptions`` and the closed-form label
  solve, for methods that label or judge in its random-feature space (MGDD);
- ``condensery_matching.bnstats``: BN-statistics matching (``BNStatsMatcher``, ``bn_layers``),
  for recover-style methods (DWA); teacher files are the core's (``condensery.teachers.load_teacher``);
- ``condensery_matching.capabilities``: ``ExpertMatching``, the capability a matcher offers to
  have its expert trajectories trained (``condensery experts``) or swapped (SeqMatch).

``tests/test_public_imports.py`` fails on an import of any other module of this plugin from
another plugin. Names are imported on first use, so that loading the plugin
(``condensery --help``) does not import torch.
"""

from typing import Any

__all__ = ["refine_images"]

#: modules of this plugin other plugins may import (their public names are a stable API)
PUBLIC_MODULES = ("pixel", "options", "experts", "krr", "bnstats", "capabilities")


def __getattr__(name: str) -> Any:
    if name == "refine_images":
        from .refine import refine_images

        return refine_images
    raise AttributeError(f"module 'condensery_matching' has no attribute {name!r}")
