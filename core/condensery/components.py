"""Base classes of the three component kinds, and the Result record evaluators return.

A component is a class with a nested ``Options`` model; the recipe's section for it is
validated against that model before any work starts, then ``cls(options)`` is built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import Field

from .options import Options

if TYPE_CHECKING:
    from .context import RunContext
    from .synthetic import SyntheticSet


class Component:
    """Anything a recipe names: holds its validated options."""

    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options) -> None:
        self.options = options


class SynthesizerOptions(Options):
    ipc: int = Field(1, ge=1, description="images per class")


class Synthesizer(Component):
    """Owns the parameterisation and optimisation loop; returns a SyntheticSet.

    Set ``uses_matcher = True`` to receive the recipe's ``synthesizer.matcher`` as
    ``ctx.matcher`` (already prepared with ``prepare``).
    """

    Options: ClassVar[type[SynthesizerOptions]] = SynthesizerOptions
    uses_matcher: ClassVar[bool] = False

    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        raise NotImplementedError(f"{type(self).__name__} must implement synthesize(ctx)")


class Matcher(Component):
    """An objective that compares synthetic to real data under a network.

    ``loss(images, labels, step)`` is differentiable w.r.t. ``images`` (and any tensors
    returned by ``parameters()``, such as a learned lr); ``after_step`` lets a matcher update
    its own state (e.g. train its network on the synthetic set, as gradient matching does).
    """

    def prepare(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def parameters(self) -> list[tuple[torch.Tensor, float]]:
        """Extra learnable tensors and the learning rate for each (default: none)."""
        return []

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement loss()")

    def after_step(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> None:
        return None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors to checkpoint so a resumed run continues identically."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        return None

    def subset_losses(self, images: torch.Tensor, labels: torch.Tensor, step: int,
                      subsets: list[torch.Tensor]) -> list[torch.Tensor]:
        """``loss`` of each row subset (index tensors) of one set, at one step.

        Nested (multisize) synthesis takes the loss of several prefixes of one pool per step.
        The default calls ``loss`` once per subset; a matcher whose loss is built from
        per-image features (distribution matching) overrides it to draw its network and
        real batch once and share them, which is also what makes the terms comparable.
        """
        return [self.loss(images[idx], labels[idx], step) for idx in subsets]

    #: True if ``solve_labels`` gives closed-form support labels (kernel ridge regression)
    solves_labels: ClassVar[bool] = False

    def solve_labels(self, images: torch.Tensor, classes: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
        """Regression targets ``[N, K]`` for ``images`` solved in this matcher's feature space.

        MGDD-style sets carry least-squares labels; the random arm they are compared with
        must get *its own* labels from the same solver, so the solver is a declared matcher
        capability rather than private code of one plugin. ``generator`` draws the real batch.
        """
        raise NotImplementedError(f"{type(self).__name__} does not solve labels (solves_labels is False)")


class Evaluator(Component):
    """Judges a SyntheticSet for the task. The runner also runs it on the random real subset."""

    compares_random: ClassVar[bool] = True

    def evaluate(self, synset: SyntheticSet, ctx: RunContext) -> list[Result]:
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate(synset, ctx)")


@dataclass
class Result:
    """One line of metrics.json: test accuracy at the end of training, mean ± std over runs."""

    evaluator: str
    model: str
    set: str
    mean: float
    std: float
    runs: int
    values: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Result:
        """The inverse of ``to_json`` (a KeyError names a missing field)."""
        fields = ("evaluator", "model", "set", "mean", "std", "runs", "values")
        return cls(*(d[f] for f in fields), extra={k: v for k, v in d.items() if k not in fields})

    @classmethod
    def from_values(cls, evaluator: str, model: str, set: str, values: list[float], **extra: Any) -> Result:
        t = torch.tensor(values, dtype=torch.float64)
        std = float(t.std(unbiased=True)) if len(values) > 1 else 0.0
        return cls(evaluator, model, set, float(t.mean()), std, len(values), list(values), extra)
