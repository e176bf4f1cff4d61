"""The ``eval`` and ``report`` commands, added to ``condensery`` through ``register_commands``."""

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
def eval_command(synset: str, recipe: str, output: str | None, overrides: tuple[str, ...], quiet: bool) -> None:
    """Evaluate an existing set SYNSET (.safetensors or ImageFolder folder) next to the random subset."""
    from condensery.plugins import get_registry
    from condensery.progress import set_quiet

    from .evaluate import run_eval

    set_quiet(quiet)
    metrics, out = run_eval(synset, recipe, output, list(overrides), get_registry())
    if not quiet:
        click.echo(f"wrote {out / 'metrics.json'} ({len(metrics['results'])} results)")


@click.command("report")
@click.argument("run_dirs", nargs=-1, type=click.Path())
@click.option("-o", "--output", "output", default="report.md", show_default=True,
              help="markdown file; the plot is written next to it as .png")
def report_command(run_dirs: tuple[str, ...], output: str) -> None:
    """Put finished runs side by side: a markdown table and an accuracy-vs-IPC plot."""
    from .report import write_report

    md, png = write_report(list(run_dirs), output)
    click.echo(f"wrote {md} and {png}")
