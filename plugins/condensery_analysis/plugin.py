"""Registers ``condensery analyze``, the ``multi-index`` dataset and the two-layer ``mlp`` model."""

from condensery import hookimpl

from .mlp import mlp_factory
from .multi_index import MultiIndex


@hookimpl
def register_datasets(register) -> None:
    register("multi-index", MultiIndex)


@hookimpl
def register_models(register) -> None:
    register("mlp", mlp_factory)


@hookimpl
def register_commands(cli) -> None:
    from .commands import analyze_command

    cli.add_command(analyze_command, "analyze")
