"""``condensery recipes``: list, show and copy the shipped recipes (``tune ls`` / ``tune cp``).

Why: the recipes are the documented way to run a method, and an installed package has them
only as package data; these commands make them discoverable and give an editable copy,
which then wins over the shipped recipe of the same name because a path always wins.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..api.errors import UserError
from ..api.files import write_atomic
from .recipe_catalog import catalogue, shipped_recipe, summary


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of objects")
@click.pass_context
def recipes(ctx: click.Context, as_json: bool) -> None:
    """The shipped recipes: name, synthesizer / matcher, dataset, IPC, measured result and time."""
    if ctx.invoked_subcommand is not None:
        return
    rows = catalogue()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    width = max(len(r.name) for r in rows)
    method = {r.name: r.synthesizer + (f" / {r.matcher}" if r.matcher else "") for r in rows}
    mwidth = max(len(m) for m in method.values())
    click.echo(f"{'name':<{width}}  {'synthesizer / matcher':<{mwidth}}  {'dataset':<20} {'ipc':>4}  measured")
    for r in rows:
        ipc = "-" if r.ipc is None else str(r.ipc)
        click.echo(f"{r.name:<{width}}  {method[r.name]:<{mwidth}}  {r.dataset:<20} {ipc:>4}  {summary(r.measured)}")


@recipes.command()
@click.argument("name")
def show(name: str) -> None:
    """Print the shipped recipe NAME."""
    click.echo(shipped_recipe(name).read_text(encoding="utf-8"), nl=False)


@recipes.command()
@click.argument("name")
@click.argument("dest", required=False)
@click.option("--force", is_flag=True, help="replace DEST if it exists")
def copy(name: str, dest: str | None, force: bool) -> None:
    """Write an editable copy of the shipped recipe NAME to DEST (default ./<last part of NAME>.yaml).

    A path wins over a shipped name, so `condensery run DEST` runs the copy.
    """
    source = shipped_recipe(name)
    target = Path(dest) if dest else Path(source.name)
    if target.is_dir():
        target = target / source.name
    if target.exists() and not force:
        raise UserError(f"'{target}' exists; pass --force to replace it, or give another DEST")
    write_atomic(target, source.read_text(encoding="utf-8"))  # an OSError is the user's: one line, exit 2
    click.echo(f"wrote {target} (run it: condensery run {target})")
