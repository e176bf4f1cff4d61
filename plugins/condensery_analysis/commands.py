"""The ``analyze`` command, added to ``condensery`` through ``register_commands``."""

from __future__ import annotations

import click


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a comma-separated list of integers, e.g. 10,50") from None


@click.command("analyze")
@click.argument("run_dir", type=click.Path())
@click.option("-o", "--output", default=None, help="report folder (default RUN_DIR/analysis)")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="training epochs on the set (default: the run's protocol)")
@click.option("--augment", type=click.Choice(["dsa", "crop-flip", "flip", "none"]), default=None,
              help="augmentation (default: the run's protocol; DSA dominates CPU time)")
@click.option("--runs", type=click.IntRange(min=1), default=2, show_default=True, help="seeds per accuracy")
@click.option("--long-factor", type=click.FloatRange(min=1.0), default=3.0, show_default=True, help="long training = epochs x this")
@click.option("--mix", default="10", show_default=True, help="real images per class mixed with the set (comma-separated)")
@click.option("--real-epochs", type=click.IntRange(min=1), default=30, show_default=True, help="epochs of the real-data reference run")
@click.option("--real-per-class", type=click.IntRange(min=1), default=None, help="cap on real images per class of that run")
@click.option("--checkpoints", type=click.IntRange(min=2), default=20, show_default=True, help="checkpoints along the real-data run")
@click.option("--max-images", type=click.IntRange(min=0), default=10, show_default=True, help="distilled images left out one by one")
@click.option("--neighbors", type=click.IntRange(min=1), default=5, show_default=True, help="nearest real images per distilled image")
@click.option("--only", default="substitution,dynamics,per-image", show_default=True, help="sections to run")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a value of the run's recipe")
@click.option("--quiet", is_flag=True, help="no progress bars or status lines")
@click.option("--force", is_flag=True, help="replace an OUTPUT folder that holds files condensery did not write "
              "as an analysis")
def analyze_command(run_dir: str, output: str | None, epochs: int | None, augment: str | None, runs: int, long_factor: float, mix: str,
                    real_epochs: int, real_per_class: int | None, checkpoints: int, max_images: int, neighbors: int,
                    only: str, overrides: tuple[str, ...], quiet: bool, force: bool) -> None:
    """What is in a distilled set: substitution, early-training dynamics, per-image information.

    Writes RUN_DIR/analysis/report.md with PNG figures and analysis.json.
    """
    from condensery import get_registry
    from condensery.api.progress import set_quiet

    from .analyze import AnalysisOptions, analyze

    set_quiet(quiet)
    options = AnalysisOptions(
        epochs=epochs, augment=augment, runs=runs, long_factor=long_factor, mix=_ints(mix), real_epochs=real_epochs,
        real_per_class=real_per_class, checkpoints=checkpoints, max_images=max_images, neighbors=neighbors,
        sections=[s.strip() for s in only.split(",") if s.strip()],
    )
    _, out = analyze(run_dir, output, options, get_registry(), list(overrides), force=force)
    if not quiet:
        click.echo(f"wrote {out / 'report.md'}")
