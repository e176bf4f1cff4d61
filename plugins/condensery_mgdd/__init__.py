"""Meta-learned generative dataset distillation (MGDD): a generator that refines real images to any size.

Public to other plugins (``PUBLIC_MODULES``; everything else here is private and may change):

- ``condensery_mgdd.capabilities``: ``TargetMatching``, what MGDD asks of a matcher whose
  loss takes closed-form support targets (``labels.krr``).
"""

#: modules of this plugin other plugins may import (their public names are a stable API)
PUBLIC_MODULES = ("capabilities",)
