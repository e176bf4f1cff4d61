"""The ``eval``, ``export`` and ``report`` commands, added to ``condensery`` through ``register_commands``."""

from __future__ import annotations

import click


@click.command("eval")
@click.argument("synset", type=click.Path())
@click.option("--recipe", "recipe", required=True, type=click.Path(dir_okay=False),
              help="recipe giving the dataset, model and evaluators (e.g. the run's recipe.yaml)")
@click.option("-o", "--output", "output", default=None,
              help="directory for metrics.json (default: eval-<recipe name> next to the set)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a recipe value")
@click.option("--quiet", is_flag=True, help="no progress bars or status lines")
@click.option("--force", is_flag=True, help="replace an OUTPUT folder that holds another evaluation, or files "
              "condensery did not write (never a run directory)")
def eval_command(synset: str, recipe: str, output: str | None, overrides: tuple[str, ...], quiet: bool,
                 force: bool) -> None:
    """Evaluate an existing set SYNSET (.safetensors or ImageFolder folder) next to the random subset."""
    from condensery import get_registry
    from condensery.api.progress import set_quiet

    from .evaluate import run_eval

    set_quiet(quiet)
    metrics, out = run_eval(synset, recipe, output, list(overrides), get_registry(), force=force)
    if not quiet:
        click.echo(f"wrote {out / 'metrics.json'} ({len(metrics['results'])} results)")


@click.command("report")
@click.argument("run_dirs", nargs=-1, type=click.Path())
@click.option("-o", "--output", "output", default="report.md", show_default=True,
              help="markdown file; the plot is written next to it as .png")
@click.option("--force", is_flag=True, help="replace an OUTPUT (or its .png) that condensery did not write as a report")
def report_command(run_dirs: tuple[str, ...], output: str, force: bool) -> None:
    """Put finished runs side by side: a markdown table and an accuracy-vs-IPC plot."""
    from .report import write_report

    md, png = write_report(list(run_dirs), output, force=force)
    click.echo(f"wrote {md} and {png}")


@click.command("export")
@click.argument("synset", type=click.Path())
@click.argument("directory", type=click.Path())
@click.option("--recipe", "recipe", default=None, type=click.Path(dir_okay=False),
              help="the set's recipe: needed for a ZCA-whitened set (to undo the whitening) or one without mean/std")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a value of --recipe")
@click.option("--keep-range", is_flag=True,
              help="map the set's pixel range onto 0..255 (recorded in set.json) instead of clipping to [0, 1]")
@click.option("--force", is_flag=True, help="replace train/ and set.json of a DIRECTORY that holds files condensery "
              "did not write as an export (other files stay)")
def export_command(synset: str, directory: str, recipe: str | None, overrides: tuple[str, ...],
                   keep_range: bool, force: bool) -> None:
    """Write SYNSET (.safetensors or run directory) as DIRECTORY/train/<class>/<index>.png plus set.json.

    8-bit PNGs, de-normalised with the set's mean/std, one folder per class name; set.json
    keeps the lr, soft labels and metadata. `condensery eval DIRECTORY` reads it all back.
    """
    from condensery import get_registry

    from .export import export_set
    from .sets import INFO

    rec = export_set(synset, directory, recipe=recipe, overrides=list(overrides), force=force,
                     keep_range=keep_range, registry=get_registry())
    folders = len({f.split("/")[1] for f in rec["files"]})
    lr = "no learned lr" if rec["lr"] is None else f"learned lr {rec['lr']:.4g}"
    click.echo(f"wrote {rec['num_images']} images in {folders} class folders under {directory}/train "
               f"and {directory}/{INFO} ({rec['label_kind']} labels, {lr})")
    if rec["label_kind"] != "hard":
        click.echo(f"  {rec['label_kind']} labels: each image is filed under its class; the full labels are in {INFO}")
    if rec["outside_unit_range"] > 0 and not keep_range:
        click.echo(f"  {100 * rec['outside_unit_range']:.1f}% of the pixels lay outside [0, 1] and were clipped; "
                   "--keep-range keeps them (condensery eval undoes it, other tools must read set.json)")
    if rec["zca"]:
        click.echo("  the set was ZCA-whitened; the PNGs hold de-whitened pixels (eval with the same recipe whitens them again)")
