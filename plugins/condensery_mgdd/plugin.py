"""Registers the ``mgdd`` synthesizer and the ``mgdd`` generator type (``condensery generate``)."""

from condensery import hookimpl


@hookimpl
def register_synthesizers(register) -> None:
    from .synthesizer import MGDDSynthesizer

    register("mgdd", MGDDSynthesizer)


@hookimpl
def register_generators(register) -> None:
    from .artifact import MGDDGenerator

    register("mgdd", MGDDGenerator)
