"""Registers the ``mgdd`` synthesizer and the ``mgdd`` generator type (``condensery generate``), by reference."""

from condensery import hookimpl


@hookimpl
def register_synthesizers(register) -> None:
    register("mgdd", "condensery_mgdd.synthesizer:MGDDSynthesizer", options="condensery_mgdd.options:MGDDOptions")


@hookimpl
def register_generators(register) -> None:
    register("mgdd", "condensery_mgdd.artifact:MGDDGenerator", options="condensery_mgdd.options:MGDDGenerateOptions")
