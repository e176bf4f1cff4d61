"""Registers the evaluators, the small-image VGG-11 (``vgg11_dd``), and the ``eval`` / ``report`` commands.

Components are registered by reference (``"module:Name"``), imported on first use, each with
its options class from ``options`` (no torch), so a recipe validates without importing them.
"""

from condensery import hookimpl

_E = "condensery_eval"
_O = f"{_E}.options"

# condensery name -> the timm network it adapts (``vgg11`` itself stays timm's ImageNet VGG-11)
MODELS = {"vgg11_dd": "vgg11"}


@hookimpl
def register_evaluators(register) -> None:
    register("hard-label", f"{_E}.hard_label:HardLabelEvaluator", options=f"{_O}:TrainProtocol")
    register("soft-label", f"{_E}.soft_label:SoftLabelEvaluator", options=f"{_O}:SoftLabelOptions")
    register("cross-arch", f"{_E}.cross_arch:CrossArchEvaluator", options=f"{_O}:CrossArchOptions")
    register("ranking", f"{_E}.ranking:RankingEvaluator", options=f"{_O}:RankingOptions")


@hookimpl
def register_models(register) -> None:
    for name in MODELS:
        register(name, f"{_E}.models:{name}", options=f"{_O}:SmallVGGOptions")


@hookimpl
def register_commands(cli) -> None:
    from .commands import eval_command, export_command, report_command

    cli.add_command(eval_command, "eval")
    cli.add_command(export_command, "export")
    cli.add_command(report_command, "report")
