"""What DWA asks of the matcher it recovers images with, beyond ``condensery.Matcher``.

Published (``PUBLIC_MODULES``) so a matcher of another plugin can offer it knowingly; it
offers it by having these members (the built-in ``bnstats`` does), checked with
``condensery.require``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class TeacherMatching(Protocol):
    """The loss is taken under a given teacher network, which may be evaluated at other weights.

    DWA recovers each batch against its teacher pushed along a directed perturbation
    (``set_teacher(net, params)``), logs the named parts of each loss (``loss_terms``) and
    releases the teacher when recovery ends (``close``).
    """

    def set_teacher(self, net: torch.nn.Module, params: dict[str, torch.Tensor] | None = None) -> None:
        """Match against ``net``, evaluated at ``params`` if given (a perturbed teacher per batch)."""
        ...

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """The named parts of the last loss (detached), for logging."""
        ...

    def close(self) -> None:
        """Release what the matcher holds on the teacher (forward hooks)."""
        ...
