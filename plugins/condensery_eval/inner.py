"""The hard- and soft-label evaluators as parts of other evaluators (cross-arch, ranking).

An inner evaluator is built here rather than by the registry, so it is named after the
protocol it runs: its random streams are salted with that name (``protocol.arm_stream``),
so its networks are the very ones the ``hard-label`` / ``soft-label`` evaluator trains.
"""

from __future__ import annotations

from condensery import Evaluator, Options

from .hard_label import HardLabelEvaluator
from .soft_label import SoftLabelEvaluator

PROTOCOLS: dict[str, type[Evaluator]] = {"hard-label": HardLabelEvaluator, "soft-label": SoftLabelEvaluator}


def inner_evaluator(protocol: str, options: Options) -> Evaluator:
    """The ``protocol`` evaluator (``hard-label`` or ``soft-label``) with ``options``, named after it."""
    evaluator = PROTOCOLS[protocol](options)
    evaluator.name = protocol
    return evaluator
