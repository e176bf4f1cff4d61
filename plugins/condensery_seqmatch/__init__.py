"""Sequential subset matching (SeqMatch, NeurIPS 2023) over the trajectory and gradient matchers.

Public to other plugins (``PUBLIC_MODULES``; everything else here is private and may change):

- ``condensery_seqmatch.capabilities``: ``WarmStartable``, what SeqMatch asks of a matcher
  whose fresh networks it warm-starts on the earlier subsets.
"""

#: modules of this plugin other plugins may import (their public names are a stable API)
PUBLIC_MODULES = ("capabilities",)
