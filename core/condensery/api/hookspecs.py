"""The whole extension surface of condensery, as pluggy hook specifications.

A plugin is any module with ``@hookimpl`` functions, registered under the entry-point
group ``condensery``. ``register_*`` hooks receive a ``register(name, obj, *, options=None)``
callable; the plugin manager records which distribution provided each component.

``obj`` is the component or a ``"package.module:Name"`` reference, imported on first use.
``options`` names the component's options class (the class or a reference, kept in a module
that imports no torch): a recipe's section for it is then validated before any component
module is imported. It must be the component's own ``Options`` (``condensery plugins
--check`` says so when it is not); without it the component is imported to read ``Options``.
For a model factory it is the options its spec may give (``{name, **options}``); a factory
without any is called with the spec's keys unchecked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:  # annotations only: importing this module stays free of click and torch
    import click

    from .context import RunContext

__all__ = ["hookimpl", "Register"]

PROJECT = "condensery"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The callable every ``register_*`` hook receives (one per plugin and component kind)."""

    def __call__(self, name: str, obj: Any, *, options: Any = None) -> None:
        """Register ``obj`` under ``name``.

        :param name: the name recipes use (``synthesizer.name: NAME``, ``matcher.name``, ...) and the
            component reports: the registry sets it as ``component.name`` (results, logs, metrics.json).
        :param obj: the class (factory for models) or a ``"package.module:Name"`` reference to it.
        :param options: its options class, or a reference to it, in a module without torch.
        """


@hookspec
def register_synthesizers(register: Register) -> None:
    """Register ``Synthesizer`` subclasses: ``register("dm-pixels", MySynth)``, or by reference with
    their options: ``register("dm-pixels", "my_pkg.synth:MySynth", options="my_pkg.options:MyOptions")``.

    :param register: ``register(name, obj, *, options=None)``, see ``Register``.
    """


@hookspec
def register_matchers(register: Register) -> None:
    """Register ``Matcher`` subclasses (objectives a pixel synthesizer optimises).

    What every pixel synthesizer asks of a matcher is declared on ``Matcher`` (``loss``,
    ``class_separable``, ``learned_lr`` ...); what one method asks beyond it is a capability
    Protocol its plugin publishes (``condensery.require``): offer it by having its members.

    :param register: ``register(name, obj, *, options=None)``, see ``Register``.
    """


@hookspec
def register_evaluators(register: Register) -> None:
    """Register ``Evaluator`` subclasses that judge a SyntheticSet.

    :param register: ``register(name, obj, *, options=None)``, see ``Register``.
    """


@hookspec
def register_generators(register: Register) -> None:
    """Register ``Generator`` subclasses under the type name their folder's ``config.json`` states:
    ``register("pool", "my_pkg.pool:PoolGenerator", options="my_pkg.options:PoolGenerateOptions")``;
    ``condensery generate`` loads any registered type and validates ``--option KEY=VALUE``
    against its options before importing it. ``save_generator`` writes the registered name.

    :param register: ``register(type_name, obj, *, options=None)``, see ``Register``.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register ``DatasetSource`` subclasses that load a labelled image dataset.

    :param register: ``register(name, obj, *, options=None)``, see ``Register``.
    """


@hookspec
def register_models(register: Register) -> None:
    """Register model factories ``f(num_classes, in_chans, img_size, **options) -> nn.Module``,
    with ``options=`` the ``Options`` class a recipe's model spec is validated against.

    :param register: ``register(name, factory, *, options=None)``, see ``Register``.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add ``click`` commands to the ``condensery`` command group.

    :param cli: the group, behind a proxy that refuses a command name another plugin (or the
        core) already took: use ``cli.add_command(cmd)`` or ``@cli.command(...)``.
    """


@hookspec
def on_run_start(context: RunContext) -> None:
    """Called once per run, on the main process, when the RunContext is ready (before synthesis).

    :param context: the run's ``RunContext``: ``context.recipe`` the resolved recipe,
        ``context.run_dir`` where it writes, ``context.runtime`` its Accelerator and trackers.
    """


@hookspec
def on_step(context: RunContext, stage: str, step: int, metrics: dict[str, float]) -> None:
    """Called on the main process whenever a component logs metrics (loggers, visualisers).

    :param context: the run's ``RunContext``.
    :param stage: names the loop (``synthesize``, ``meta-train`` ...).
    :param step: counts within the stage (a resumed run continues the count).
    :param metrics: metric names to floats.
    """


@hookspec
def on_run_end(context: RunContext, metrics: dict[str, Any]) -> None:
    """Called once per run, on the main process, after ``metrics.json`` is written.

    :param context: the run's ``RunContext``.
    :param metrics: what ``metrics.json`` holds (``results``, ``seed``, ``runtime`` ...).
    """
