"""Registers the ``dwa`` synthesizer (SRe2L with rho: 0) and the ``diversity`` evaluator (by reference, with their options)."""

from condensery import hookimpl


@hookimpl
def register_synthesizers(register) -> None:
    register("dwa", "condensery_dwa.synthesizer:DWASynthesizer", options="condensery_dwa.options:DWAOptions")


@hookimpl
def register_evaluators(register) -> None:
    register("diversity", "condensery_dwa.diversity:DiversityEvaluator", options="condensery_dwa.options:DiversityOptions")
