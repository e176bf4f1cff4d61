"""The whole extension surface of condensery, as pluggy hook specifications.

A plugin is any module with ``@hookimpl`` functions, registered under the entry-point
group ``condensery``. ``register_*`` hooks receive a ``register(name, obj)`` callable;
the plugin manager records which distribution provided each component.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "condensery"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[str, Any], None]


@hookspec
def register_synthesizers(register: Register) -> None:
    """Register ``Synthesizer`` subclasses: ``register("dm-pixels", MySynth)``."""


@hookspec
def register_matchers(register: Register) -> None:
    """Register ``Matcher`` subclasses (objectives a pixel synthesizer optimises)."""


@hookspec
def register_evaluators(register: Register) -> None:
    """Register ``Evaluator`` subclasses that judge a SyntheticSet."""


@hookspec
def register_generators(register: Register) -> None:
    """Register ``Generator`` subclasses under the type name their folder's ``config.json`` states:
    ``register("pool", PoolGenerator)``; ``condensery generate`` loads any registered type."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register ``DatasetSource`` subclasses that load a labelled image dataset."""


@hookspec
def register_models(register: Register) -> None:
    """Register model factories ``f(num_classes, in_chans, img_size, **options) -> nn.Module``."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add ``click`` commands to the ``condensery`` command group."""


@hookspec
def on_run_start(context: Any) -> None:
    """Called once per run, on the main process, when the RunContext is ready (before synthesis).

    ``context`` is the run's ``RunContext``: ``context.recipe`` the resolved recipe,
    ``context.run_dir`` where it writes, ``context.runtime`` its Accelerator and trackers.
    """


@hookspec
def on_step(context: Any, stage: str, step: int, metrics: dict[str, float]) -> None:
    """Called on the main process whenever a component logs metrics (loggers, visualisers).

    ``stage`` names the loop (``synthesize``, ``meta-train`` ...), ``step`` counts within it
    (a resumed run continues the count), ``metrics`` maps names to floats.
    """


@hookspec
def on_run_end(context: Any, metrics: dict[str, Any]) -> None:
    """Called once per run, on the main process, after ``metrics.json`` is written with ``metrics``."""
