"""What other components may ask of this plugin's matchers beyond ``condensery.Matcher``.

``ExpertMatching`` lives here because this plugin's ``condensery experts`` command asks for
it (and SeqMatch, which warm-starts experts per stage); a matcher of any plugin offers it by
having its members, checked with ``condensery.require`` / ``condensery.offers``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from condensery import RunContext

    from .experts import ExpertSpec


@runtime_checkable
class ExpertMatching(Protocol):
    """The loss matches stored expert trajectories (trajectory matching).

    ``condensery experts`` trains the experts ``expert_spec`` describes into
    ``experts_directory`` before any run; SeqMatch trains stage experts warm-started on
    earlier subsets and swaps them in with ``use_experts``.
    """

    def expert_spec(self, ctx: RunContext) -> ExpertSpec:
        """What the experts are trained with; works before ``prepare``."""
        ...

    def experts_directory(self, ctx: RunContext) -> Path:
        """Where this matcher's experts are stored (and ``condensery experts`` writes them)."""
        ...

    def use_experts(self, experts: list[Path]) -> None:
        """Match these trajectory files from now on."""
        ...
