"""What SeqMatch asks of the matcher it wraps, beyond ``condensery.Matcher``.

Stage k must match a later point of training than stage 1: SeqMatch warm-starts what the
matcher matches on the frozen earlier subsets, either its expert trajectories
(``condensery_matching.capabilities.ExpertMatching``) or its fresh networks
(``WarmStartable``, published here). A matcher of any plugin offers it by having its
member, checked with ``condensery.offers``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class WarmStartable(Protocol):
    """Every fresh matching network can be trained by a given function first (gradient matching)."""

    def set_warm_start(self, fn: Callable[[torch.nn.Module, int], None] | None) -> None:
        """Train every fresh matching network with ``fn(net, iteration)`` first (None: stop)."""
        ...
