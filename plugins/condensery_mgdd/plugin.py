"""Registers the ``mgdd`` synthesizer and the ``condensery generate`` command."""

from condensery import hookimpl


@hookimpl
def register_synthesizers(register) -> None:
    from .synthesizer import MGDDSynthesizer

    register("mgdd", MGDDSynthesizer)


@hookimpl
def register_commands(cli) -> None:
    from .commands import generate_command

    cli.add_command(generate_command, "generate")
