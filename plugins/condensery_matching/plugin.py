"""Registers the pixel and multisize synthesizers, the pool generator, the matchers and the ``condensery experts`` command.

Components are registered by reference (``"module:Name"``), imported on first use.
"""

from condensery import hookimpl

_M = "condensery_matching"


@hookimpl
def register_synthesizers(register) -> None:
    register("pixel", f"{_M}.pixel:PixelSynthesizer")
    register("multisize", f"{_M}.pool:MultisizeSynthesizer")


@hookimpl
def register_generators(register) -> None:
    register("pool", f"{_M}.pool:PoolGenerator")


@hookimpl
def register_matchers(register) -> None:
    register("distribution", f"{_M}.distribution:DistributionMatcher")
    register("bnstats", f"{_M}.bnstats:BNStatsMatcher")
    register("gradient", f"{_M}.gradient:GradientMatcher")
    register("trajectory", f"{_M}.trajectory:TrajectoryMatcher")
    register("krr", f"{_M}.krr:KRRMatcher")


@hookimpl
def register_commands(cli) -> None:
    from .commands import experts_command

    cli.add_command(experts_command)
