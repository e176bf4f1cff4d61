"""What MGDD asks of its matcher beyond ``condensery.Matcher``.

Published (``PUBLIC_MODULES``) so a matcher of another plugin can offer it knowingly; it
offers it by having the member (the built-in ``krr`` does), checked with ``condensery.offers``.
Closed-form labels for the random arm are the core's ``condensery.api.capabilities.LabelSolver``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class TargetMatching(Protocol):
    """The loss takes ``[N, K]`` support targets in place of the labels' own (kernel ridge regression).

    MGDD solves the support labels of its initial images in closed form and passes them
    through the generator ("solve the labels in the original space"); with ``labels.krr``
    its loss is the matcher's loss under those targets.
    """

    def loss_with_targets(self, images: torch.Tensor, labels: torch.Tensor, step: int,
                          targets: torch.Tensor | None) -> torch.Tensor:
        """``loss(images, labels, step)`` with ``targets`` as the support labels (None: the labels' own)."""
        ...
