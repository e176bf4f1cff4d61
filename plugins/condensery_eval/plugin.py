"""Registers the evaluators, the small-image VGG-11 (``vgg11_dd``), and the ``eval`` / ``report`` commands.

Components are registered by reference (``"module:Name"``), imported on first use.
"""

from condensery import hookimpl

_E = "condensery_eval"

# condensery name -> the timm network it adapts (``vgg11`` itself stays timm's ImageNet VGG-11)
MODELS = {"vgg11_dd": "vgg11"}


@hookimpl
def register_evaluators(register) -> None:
    register("hard-label", f"{_E}.hard_label:HardLabelEvaluator")
    register("soft-label", f"{_E}.soft_label:SoftLabelEvaluator")
    register("cross-arch", f"{_E}.cross_arch:CrossArchEvaluator")
    register("ranking", f"{_E}.ranking:RankingEvaluator")


@hookimpl
def register_models(register) -> None:
    for name in MODELS:
        register(name, f"{_E}.models:{name}")


@hookimpl
def register_commands(cli) -> None:
    from .commands import eval_command, export_command, report_command

    cli.add_command(eval_command, "eval")
    cli.add_command(export_command, "export")
    cli.add_command(report_command, "report")
