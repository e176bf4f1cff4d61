"""Diversity-driven directed weight adjustment (DWA) on the SRe2L squeeze/recover/relabel pipeline.

Public to other plugins (``PUBLIC_MODULES``; everything else here is private and may change):

- ``condensery_dwa.capabilities``: ``TeacherMatching``, what DWA asks of the matcher it
  recovers images with (a teacher at perturbed weights, the loss's named terms, ``close``).
"""

#: modules of this plugin other plugins may import (their public names are a stable API)
PUBLIC_MODULES = ("capabilities",)
