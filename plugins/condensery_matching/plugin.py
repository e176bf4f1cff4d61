"""Registers the pixel synthesizer, the matchers and the ``condensery experts`` command."""

from condensery import hookimpl

from .bnstats import BNStatsMatcher
from .distribution import DistributionMatcher
from .gradient import GradientMatcher
from .krr import KRRMatcher
from .pixel import PixelSynthesizer
from .trajectory import TrajectoryMatcher, experts_command


@hookimpl
def register_synthesizers(register) -> None:
    register("pixel", PixelSynthesizer)


@hookimpl
def register_matchers(register) -> None:
    register("distribution", DistributionMatcher)
    register("bnstats", BNStatsMatcher)
    register("gradient", GradientMatcher)
    register("trajectory", TrajectoryMatcher)
    register("krr", KRRMatcher)


@hookimpl
def register_commands(cli) -> None:
    cli.add_command(experts_command)
