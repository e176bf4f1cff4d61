"""Registers the coreset baselines (by reference: imported on first use; options from ``options``, no torch)."""

from condensery import hookimpl


@hookimpl
def register_synthesizers(register) -> None:
    for name, cls, options in (("random", "Random", "RandomOptions"), ("herding", "Herding", "SelectionOptions"),
                               ("kcenter", "KCenter", "SelectionOptions"), ("kmeans", "KMeans", "SelectionOptions")):
        register(name, f"condensery_baselines.selection:{cls}", options=f"condensery_baselines.options:{options}")
