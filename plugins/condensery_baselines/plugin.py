"""Registers the coreset baselines."""

from condensery import hookimpl

from .selection import Herding, KCenter, KMeans, Random


@hookimpl
def register_synthesizers(register) -> None:
    register("random", Random)
    register("herding", Herding)
    register("kcenter", KCenter)
    register("kmeans", KMeans)
