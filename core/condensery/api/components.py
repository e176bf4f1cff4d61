"""Base classes of the three component kinds, and the Result record evaluators return.

A component is a class with a nested ``Options`` model; the recipe's section for it is
validated against that model before any work starts, then ``cls(options)`` is built. The
options classes live in modules without torch (``SynthesizerOptions`` in ``options``) so
that validation imports no component.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .options import Options, SynthesizerOptions

if TYPE_CHECKING:
    from .context import RunContext
    from .synthetic import SyntheticSet


class Component:
    """Anything a recipe names: holds its validated options."""

    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options) -> None:
        self.options = options


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

    Everything another component may ask of a matcher is declared here, with a default that
    means "not offered": a synthesizer reads these attributes and calls these methods, never
    ``getattr``/``hasattr``/``isinstance`` on a concrete matcher class. Override the ones your
    matcher offers (``docs/writing-plugins.md``, "Capabilities a component can declare").
    """

    #: True if the loss is a sum of independent per-class terms (and the random draws do not
    #: depend on which classes are present): the pixel synthesizer then gives each process its
    #: share of the classes and sums the gradients. May be set per instance in ``prepare``.
    class_separable: bool = False

    #: True if ``loss`` accepts ``targets=``, ``[N, K]`` support labels replacing ``labels``'
    #: own (MGDD passes its closed-form label solve); other matchers refuse ``targets``.
    supports_targets: ClassVar[bool] = False

    #: True if ``solve_labels`` gives closed-form support labels (kernel ridge regression)
    solves_labels: ClassVar[bool] = False

    #: True if the loss matches stored expert trajectories: ``expert_spec``, ``experts_directory``
    #: and ``use_experts`` work (the ``condensery experts`` command; SeqMatch's stage experts)
    uses_experts: ClassVar[bool] = False

    #: True if ``set_warm_start`` is honoured: every fresh matching network is first trained by
    #: a given function (SeqMatch warm-starts gradient matching on its earlier subsets)
    supports_warm_start: ClassVar[bool] = False

    #: the matcher's random stream (real batches, augmentation), set in ``prepare`` and held in
    #: ``state_dict``; a synthesizer may replace it (DWA: one stream per recovered batch)
    gen: torch.Generator

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A ``loss`` of a matcher without ``supports_targets`` may keep the three-argument
        signature; it is wrapped so that ``targets=`` is one clear ``TypeError`` naming it."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("loss")
        if own is not None and not cls.supports_targets:
            cls.loss = _refusing_targets(own)  # type: ignore[method-assign]

    def prepare(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def parameters(self) -> list[tuple[torch.Tensor, float]]:
        """Extra learnable tensors and the learning rate for each (default: none)."""
        return []

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int,
             targets: torch.Tensor | None = None) -> torch.Tensor:
        """The matching loss of ``(images, labels)`` at ``step``.

        ``targets`` (``[N, K]``) replaces the support labels; only a matcher with
        ``supports_targets = True`` takes it, any other refuses it with one ``TypeError``
        naming the matcher (its ``loss`` may keep the three-argument signature).
        """
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

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """The named parts of the last ``loss`` (detached), for logging; default: none.

        DWA logs the BN-statistics matcher's ``ce`` and ``bn`` terms at every recover step.
        """
        return {}

    # -- closed-form labels -------------------------------------------------------------
    def solve_labels(self, images: torch.Tensor, classes: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
        """Regression targets ``[N, K]`` for ``images`` solved in this matcher's feature space.

        MGDD-style sets carry least-squares labels; the random arm they are compared with
        must get *its own* labels from the same solver, so the solver is a declared matcher
        capability rather than private code of one plugin. ``generator`` draws the real batch.
        """
        raise NotImplementedError(f"{type(self).__name__} does not solve labels (solves_labels is False)")

    # -- expert trajectories (uses_experts) ---------------------------------------------
    def expert_spec(self, ctx: RunContext) -> Any:
        """What the experts are trained with (an ``ExpertSpec``); works before ``prepare``."""
        raise NotImplementedError(f"{type(self).__name__} matches no expert trajectories (uses_experts is False)")

    def experts_directory(self, ctx: RunContext) -> Path:
        """Where this matcher's experts are stored (and ``condensery experts`` writes them)."""
        raise NotImplementedError(f"{type(self).__name__} matches no expert trajectories (uses_experts is False)")

    def use_experts(self, experts: list[Path]) -> None:
        """Match these trajectory files from now on (SeqMatch: experts warm-started on earlier subsets)."""
        raise NotImplementedError(f"{type(self).__name__} matches no expert trajectories (uses_experts is False)")

    # -- warm-started networks (supports_warm_start) ------------------------------------
    def set_warm_start(self, fn: Callable[[torch.nn.Module, int], None] | None) -> None:
        """Train every fresh matching network with ``fn(net, iteration)`` first (None: stop)."""
        raise NotImplementedError(f"{type(self).__name__} cannot warm-start its networks (supports_warm_start is False)")

    # -- a teacher network (BN-statistics matching) -------------------------------------
    def set_teacher(self, net: torch.nn.Module, params: dict[str, torch.Tensor] | None = None) -> None:
        """Match against ``net``, evaluated at ``params`` if given (DWA: a perturbed teacher per batch)."""
        raise NotImplementedError(f"{type(self).__name__} matches against no teacher network")

    def close(self) -> None:
        """Release what the matcher holds on networks it was given (forward hooks); default: nothing.

        DWA calls it when recovery ends, so its teacher is left without the matcher's hooks.
        """
        return None


def _refusing_targets(loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``loss`` of a matcher without ``supports_targets``: ``targets=`` is one clear error."""

    @functools.wraps(loss)
    def checked(self: Matcher, images: torch.Tensor, labels: torch.Tensor, step: int,
                targets: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        if targets is not None:
            raise TypeError(f"matcher {type(self).__name__} takes no support targets (supports_targets is False); "
                            "pass the labels alone, or use a matcher that declares supports_targets (krr)")
        return loss(self, images, labels, step, **kwargs)

    return checked


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
