"""Registers the evaluators."""

from condensery import hookimpl

from .hard_label import HardLabelEvaluator


@hookimpl
def register_evaluators(register) -> None:
    register("hard-label", HardLabelEvaluator)
