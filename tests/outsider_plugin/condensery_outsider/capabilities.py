"""What the ``class-by-class`` synthesizer asks of its matcher beyond ``condensery.Matcher``."""

from typing import Protocol, runtime_checkable


@runtime_checkable
class ClassFocus(Protocol):
    """The loss can be limited to some classes, so a synthesizer can optimise one class at a time."""

    def focus(self, classes: list[int] | None) -> None:
        """Count only ``classes`` in the loss from now on (None: every class)."""
        ...
