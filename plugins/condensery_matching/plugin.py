"""Registers the pixel synthesizer and the matchers."""

from condensery import hookimpl

from .bnstats import BNStatsMatcher
from .distribution import DistributionMatcher
from .pixel import PixelSynthesizer


@hookimpl
def register_synthesizers(register) -> None:
    register("pixel", PixelSynthesizer)


@hookimpl
def register_matchers(register) -> None:
    register("distribution", DistributionMatcher)
    register("bnstats", BNStatsMatcher)
