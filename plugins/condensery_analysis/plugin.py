"""Registers ``condensery analyze``, the ``multi-index`` dataset and the two-layer ``mlp`` model.

Components are registered by reference (``"module:Name"``), imported on first use, and with
their options (``options``, no torch), so loading this plugin or validating a recipe costs no
torch import.
"""

from condensery import hookimpl


@hookimpl
def register_datasets(register) -> None:
    register("multi-index", "condensery_analysis.multi_index:MultiIndex",
             options="condensery_analysis.options:MultiIndexOptions")


@hookimpl
def register_models(register) -> None:
    register("mlp", "condensery_analysis.mlp:mlp_factory", options="condensery_analysis.options:MLPOptions")


@hookimpl
def register_commands(cli) -> None:
    from .commands import analyze_command

    cli.add_command(analyze_command, "analyze")
