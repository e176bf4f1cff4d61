"""Registers the components by reference, each with its options: loading the plugin imports no torch."""

from condensery import hookimpl

_P = "condensery_outsider"


@hookimpl
def register_matchers(register):
    register("mean-match", f"{_P}.matcher:MeanMatcher", options=f"{_P}.options:MeanOptions")


@hookimpl
def register_synthesizers(register):
    register("class-by-class", f"{_P}.synthesizer:ClassByClass", options=f"{_P}.options:ClassByClassOptions")


@hookimpl
def register_evaluators(register):
    register("hard-label-copy", f"{_P}.evaluator:HardLabelCopy", options="condensery_eval.options:TrainProtocol")


@hookimpl
def register_generators(register):
    register("class-means", f"{_P}.generator:ClassMeans", options=f"{_P}.options:ClassMeansOptions")
