"""Registers ``condensery analyze``, the ``multi-index`` dataset and the two-layer ``mlp`` model.

Components are registered by reference (``"module:Name"``), imported on first use, so
loading this plugin costs no torch import.
"""

from condensery import hookimpl


@hookimpl
def register_datasets(register) -> None:
    register("multi-index", "condensery_analysis.multi_index:MultiIndex")


@hookimpl
def register_models(register) -> None:
    register("mlp", "condensery_analysis.mlp:mlp_factory")


@hookimpl
def register_commands(cli) -> None:
    from .commands import analyze_command

    cli.add_command(analyze_command, "analyze")
