"""Registers the evaluators, the small-image VGG-11, and the ``eval`` / ``report`` commands."""

from condensery import hookimpl

from .cross_arch import CrossArchEvaluator
from .hard_label import HardLabelEvaluator
from .models import small_vgg_factory
from .ranking import RankingEvaluator
from .soft_label import SoftLabelEvaluator

MODELS = ("vgg11",)


@hookimpl
def register_evaluators(register) -> None:
    register("hard-label", HardLabelEvaluator)
    register("soft-label", SoftLabelEvaluator)
    register("cross-arch", CrossArchEvaluator)
    register("ranking", RankingEvaluator)


@hookimpl
def register_models(register) -> None:
    for name in MODELS:
        register(name, small_vgg_factory(name))


@hookimpl
def register_commands(cli) -> None:
    from .commands import eval_command, report_command

    cli.add_command(eval_command, "eval")
    cli.add_command(report_command, "report")
