"""Base classes of the three component kinds, and the Result record evaluators return.

A component is a class with a nested ``Options`` model; the recipe's section for it is
validated against that model before any work starts, then the registry builds it and
gives it the name it was registered under (``Component.name``). The options classes live
in modules without torch (``SynthesizerOptions`` in ``options``) so that validation imports
no component.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .options import Options, SynthesizerOptions

if TYPE_CHECKING:
    from .context import RunContext
    from .synthetic import SyntheticSet


class Component:
    """Anything a recipe names: holds its validated options and the name it was registered under."""

    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options) -> None:
        self.options = options

    @property
    def name(self) -> str:
        """The name this component was registered under: what results, logs and metrics.json say.

        The registry sets it when it builds the component (``registry.get(kind, name).build``),
        so a copy of a component registered under another name reports that name.
        """
        try:
            return self.__dict__["_registered_name"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} was built by hand, so it has no registered name; build it "
                                 "with registry.get(kind, name).build(options)") from None

    @name.setter
    def name(self, value: str) -> None:
        self.__dict__["_registered_name"] = value


class Synthesizer(Component):
    """Owns the parameterisation and optimisation loop; returns a SyntheticSet.

    Set ``uses_matcher = True`` to receive the recipe's ``synthesizer.matcher`` as
    ``ctx.matcher`` (already prepared with ``prepare``); state the same on the options class
    (``uses_matcher: ClassVar[bool] = True``) to have the matcher section's presence checked
    before this class is imported.
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

    This base holds what every synthesizer that optimises pixels asks of its matcher. What
    one method asks beyond it (a teacher, a warm start, expert trajectories, support targets)
    is a capability: a ``typing.Protocol`` published by the plugin that asks, offered by
    having its members and checked with ``condensery.require`` / ``condensery.offers``.
    """

    #: True if the loss is a sum of independent per-class terms (and the random draws do not
    #: depend on which classes are present): the pixel synthesizer then gives each process its
    #: share of the classes and sums the gradients. May be set per instance in ``prepare``.
    class_separable: bool = False

    #: the matcher's random stream (real batches, augmentation), set in ``prepare`` and held in
    #: ``state_dict``; a synthesizer may replace it (DWA: one stream per recovered batch)
    gen: torch.Generator

    def prepare(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def parameters(self) -> list[tuple[torch.Tensor, float]]:
        """Extra learnable tensors and the learning rate for each (default: none)."""
        return []

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        """The matching loss of ``(images, labels)`` at ``step``."""
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

    # -- what the set carries besides its images ----------------------------------------
    def learned_lr(self) -> float | None:
        """The training lr the matcher learned with the images (trajectory matching), or None.

        The pixel and SeqMatch synthesizers store it in the set (``SyntheticSet.lr``,
        ``stage_lrs``) for evaluators to train with.
        """
        return None

    def learned_labels(self) -> torch.Tensor | None:
        """``[N, K]`` labels the matcher learned for the images (KRR ``learn_labels``), or None.

        The pixel synthesizer stores them as the set's labels; MGDD refuses a matcher that
        learns labels, because it solves them in closed form.
        """
        return None


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
