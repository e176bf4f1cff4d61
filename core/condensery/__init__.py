"""condensery: dataset distillation behind one plugin interface.

The public API plugins use. The core holds no method: synthesizers, matchers and
evaluators arrive through the ``condensery`` entry-point group.

Names are imported on first use (PEP 562), so ``import condensery`` -- what every
plugin module does for ``hookimpl`` -- costs no torch import, and ``condensery --help``
stays fast. ``from condensery import SyntheticSet`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .hookspecs import hookimpl

__version__ = "0.1.0"

#: public name -> the submodule that defines it
_LAZY: dict[str, str] = {
    **dict.fromkeys(['get_registry'], ".plugins"),
    **dict.fromkeys(['set_quiet'], ".progress"),
    **dict.fromkeys(['CheckpointStore', 'load_optimizer_state', 'optimizer_state'], ".checkpoints"),
    **dict.fromkeys(['comparisons', 'describe_comparison', 'paired_interval', 'pooled_interval', 'result_lines', 'welch_interval'], ".compare"),
    **dict.fromkeys(['Component', 'Evaluator', 'Matcher', 'Result', 'Synthesizer', 'SynthesizerOptions'], ".components"),
    **dict.fromkeys(['RunContext', 'Task', 'build_model', 'label_like', 'random_subset_draw'], ".context"),
    **dict.fromkeys(['AugParams', 'DSA', 'DatasetOptions', 'DatasetSource', 'RawSplits', 'RealData', 'crop_flip'], ".data"),
    **dict.fromkeys(['cache_dir'], ".data.realdata"),
    **dict.fromkeys(['CondenseryError', 'DivergenceError', 'UserError'], ".errors"),
    **dict.fromkeys(['GenerateOptions', 'Generator', 'load_generator', 'read_generator_config', 'save_generator', 'task_config'], ".generators"),
    **dict.fromkeys(['embed', 'embed_batched'], ".models"),
    **dict.fromkeys(['Options'], ".options"),
    **dict.fromkeys(['Runtime', 'make_generator'], ".runtime"),
    **dict.fromkeys(['RuntimeOptions'], ".runtime_options"),
    **dict.fromkeys(['SyntheticSet'], ".synthetic"),
    **dict.fromkeys(['context_of', 'open_task'], ".tasks"),
    **dict.fromkeys(['read_safetensors'], ".tensorfile"),
    **dict.fromkeys(['accuracy', 'backward_step', 'predict', 'soft_cross_entropy', 'train_classifier'], ".training"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'condensery' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


if TYPE_CHECKING:  # what type checkers and IDEs see: the eager imports
    from .checkpoints import CheckpointStore, load_optimizer_state, optimizer_state  # noqa: F401
    from .compare import (  # noqa: F401
        comparisons,
        describe_comparison,
        paired_interval,
        pooled_interval,
        result_lines,
        welch_interval,
    )
    from .components import Component, Evaluator, Matcher, Result, Synthesizer, SynthesizerOptions  # noqa: F401
    from .context import RunContext, Task, build_model, label_like, random_subset_draw  # noqa: F401
    from .data import DSA, AugParams, DatasetOptions, DatasetSource, RawSplits, RealData, crop_flip  # noqa: F401
    from .data.realdata import cache_dir  # noqa: F401
    from .errors import CondenseryError, DivergenceError, UserError  # noqa: F401
    from .generators import (  # noqa: F401
        GenerateOptions,
        Generator,
        load_generator,
        read_generator_config,
        save_generator,
        task_config,
    )
    from .models import embed, embed_batched  # noqa: F401
    from .options import Options  # noqa: F401
    from .plugins import get_registry  # noqa: F401
    from .progress import set_quiet  # noqa: F401
    from .runtime import Runtime, make_generator  # noqa: F401
    from .runtime_options import RuntimeOptions  # noqa: F401
    from .synthetic import SyntheticSet  # noqa: F401
    from .tasks import context_of, open_task  # noqa: F401
    from .tensorfile import read_safetensors  # noqa: F401
    from .training import accuracy, backward_step, predict, soft_cross_entropy, train_classifier  # noqa: F401

__all__ = [
    "__version__", "hookimpl", "get_registry", "set_quiet", "Options", "Component", "Synthesizer", "SynthesizerOptions",
    "Matcher", "Evaluator", "Result", "SyntheticSet", "RunContext", "Task", "build_model", "random_subset_draw",
    "label_like",
    "Runtime", "RuntimeOptions", "make_generator", "read_safetensors", "RealData", "DatasetSource", "DatasetOptions",
    "RawSplits", "DSA", "AugParams", "crop_flip", "CheckpointStore", "optimizer_state",
    "load_optimizer_state", "UserError", "DivergenceError", "CondenseryError",
    "Generator", "GenerateOptions", "save_generator", "load_generator", "read_generator_config", "task_config",
    "open_task", "context_of", "cache_dir",
    "comparisons", "describe_comparison", "paired_interval", "welch_interval", "pooled_interval", "result_lines",
    "train_classifier", "backward_step", "embed", "embed_batched", "predict", "accuracy", "soft_cross_entropy",
]
