"""Registers the coreset baselines (by reference: imported on first use)."""

from condensery import hookimpl


@hookimpl
def register_synthesizers(register) -> None:
    for name, cls in (("random", "Random"), ("herding", "Herding"), ("kcenter", "KCenter"), ("kmeans", "KMeans")):
        register(name, f"condensery_baselines.selection:{cls}")
