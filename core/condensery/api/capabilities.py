"""Capabilities: what one component asks of another beyond its kind's base class.

A capability is a small ``typing.Protocol`` marked ``@runtime_checkable``. It belongs to the
plugin whose component asks for it (DWA's teacher, SeqMatch's warm start, MGDD's support
targets), published in a module that plugin declares public, so a new method brings its
own capability and never changes the core; a component offers one simply by having its
members. ``offers`` and ``require`` are the one way to check: plugins never sniff a
component with ``getattr``/``hasattr``/``isinstance`` (``tests/test_declared_surface.py``).

A capability the core itself asks for is declared here, with why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

from .errors import UserError

if TYPE_CHECKING:
    import torch

__all__ = ["offers", "require", "LabelSolver", "members", "describe"]

C = TypeVar("C")


def offers(component: object, capability: type[C]) -> bool:
    """Whether ``component`` has every member of ``capability`` (a runtime-checkable Protocol).

    For a component that may or may not offer it (SeqMatch warm-starts whichever way its
    matcher allows); a component that must offer it is ``require``'d.
    """
    try:
        return isinstance(component, capability)
    except TypeError:  # a plain class or a Protocol without @runtime_checkable: a bug of its plugin
        raise TypeError(f"capability {capability.__qualname__} must be a typing.Protocol decorated with "
                        "@runtime_checkable") from None


def require(component: C | object, capability: type[C], purpose: str) -> C:
    """``component``, checked to offer ``capability``; otherwise one ``UserError`` line.

    ``purpose`` names what asks for it (``"synthesizer 'dwa'"``); the message names the
    component by its registered name, the capability with its members, and the purpose.
    """
    if offers(component, capability):
        return component  # type: ignore[return-value]
    wanted = f"{capability.__name__} ({', '.join(members(capability))})"
    if component is None:
        raise UserError(f"{purpose} needs a component that offers {wanted}, and none was given")
    raise UserError(f"{purpose} needs {wanted}, which {describe(component)} does not offer; "
                    "choose a component that does")


def members(capability: type) -> list[str]:
    """The public members a component needs to offer ``capability``."""
    names: set[str] = set()
    for base in capability.__mro__:
        if base in (Protocol, Generic, object):
            continue
        names.update(n for n in (*vars(base), *getattr(base, "__annotations__", {})) if not n.startswith("_"))
    return sorted(names)


def describe(component: object) -> str:
    """``matcher 'krr'``: a component's kind and the name it was registered under."""
    from .components import Evaluator, Matcher, Synthesizer
    from .generator import Generator

    kinds = ((Matcher, "matcher"), (Synthesizer, "synthesizer"), (Evaluator, "evaluator"), (Generator, "generator"))
    kind = next((k for base, k in kinds if isinstance(component, base)), "component")
    try:
        name = component.name  # type: ignore[attr-defined]
    except (AttributeError, KeyError):  # built by hand, outside the registry
        name = type(component).__name__
    return f"{kind} '{name}'"


@runtime_checkable
class LabelSolver(Protocol):
    """Closed-form support labels in a matcher's feature space (kernel ridge regression).

    Declared by the core because the core asks for it: a set whose labels were solved
    (``metadata["label_solver"]``, MGDD's ``labels.set: krr``) is compared with a random
    real subset that must get *its own* labels from the same solver (``label_like``).
    """

    def solve_labels(self, images: torch.Tensor, classes: torch.Tensor | None,
                     generator: torch.Generator) -> torch.Tensor:
        """``[N, K]`` regression targets for ``images``; ``generator`` draws the real batch."""
        ...
