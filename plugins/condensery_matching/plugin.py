"""Registers the pixel and multisize synthesizers, the pool generator, the matchers and the ``condensery experts`` command."""

from condensery import hookimpl

from .bnstats import BNStatsMatcher
from .distribution import DistributionMatcher
from .gradient import GradientMatcher
from .krr import KRRMatcher
from .pixel import PixelSynthesizer
from .pool import MultisizeSynthesizer, PoolGenerator
from .trajectory import TrajectoryMatcher, experts_command


@hookimpl
def register_synthesizers(register) -> None:
    register("pixel", PixelSynthesizer)
    register("multisize", MultisizeSynthesizer)


@hookimpl
def register_generators(register) -> None:
    register("pool", PoolGenerator)


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
