"""Registers the ``dwa`` synthesizer (SRe2L with rho: 0) and the ``diversity`` evaluator."""

from condensery import hookimpl

from .diversity import DiversityEvaluator
from .synthesizer import DWASynthesizer


@hookimpl
def register_synthesizers(register) -> None:
    register("dwa", DWASynthesizer)


@hookimpl
def register_evaluators(register) -> None:
    register("diversity", DiversityEvaluator)
