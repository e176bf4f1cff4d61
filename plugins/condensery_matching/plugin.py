"""Registers the pixel and multisize synthesizers, the pool generator, the matchers and the ``condensery experts`` command.

Components are registered by reference (``"module:Name"``), imported on first use, each with
its options class from ``options`` (no torch), so a recipe validates without importing them.
"""

from condensery import hookimpl

_M = "condensery_matching"
_O = f"{_M}.options"


@hookimpl
def register_synthesizers(register) -> None:
    register("pixel", f"{_M}.pixel:PixelSynthesizer", options=f"{_O}:PixelOptions")
    register("multisize", f"{_M}.pool:MultisizeSynthesizer", options=f"{_O}:MultisizeOptions")


@hookimpl
def register_generators(register) -> None:
    register("pool", f"{_M}.pool:PoolGenerator", options=f"{_O}:PoolGenerateOptions")


@hookimpl
def register_matchers(register) -> None:
    register("distribution", f"{_M}.distribution:DistributionMatcher", options=f"{_O}:DistributionOptions")
    register("bnstats", f"{_M}.bnstats:BNStatsMatcher", options=f"{_O}:BNStatsOptions")
    register("gradient", f"{_M}.gradient:GradientMatcher", options=f"{_O}:GradientOptions")
    register("trajectory", f"{_M}.trajectory:TrajectoryMatcher", options=f"{_O}:TrajectoryOptions")
    register("krr", f"{_M}.krr:KRRMatcher", options=f"{_O}:KRROptions")


@hookimpl
def register_commands(cli) -> None:
    from .commands import experts_command

    cli.add_command(experts_command)
