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

from .api.hookspecs import hookimpl

__version__ = "0.1.0"

#: public name -> the submodule that defines it
_LAZY: dict[str, str] = {
    **dict.fromkeys(['get_registry'], "._engine.plugins"),
    **dict.fromkeys(['say', 'set_quiet'], ".api.progress"),
    **dict.fromkeys(['write_json', 'write_yaml'], "._engine.rundir"),
    **dict.fromkeys(['write_atomic', 'atomic_path'], ".api.files"),
    **dict.fromkeys(['environment'], "._engine.runner"),
    **dict.fromkeys(['CheckpointStore'], ".api.checkpoints"),
    **dict.fromkeys(['LoopCheckpoint', 'SavedLoop', 'loop_fingerprint'], ".resumable"),
    **dict.fromkeys(['comparisons', 'describe_comparison', 'paired_interval', 'pooled_interval', 'result_lines', 'welch_interval'], ".compare"),
    **dict.fromkeys(['Component', 'Evaluator', 'Matcher', 'Result', 'Synthesizer'], ".api.components"),
    # options need no torch: a recipe is validated against them before any component is imported
    **dict.fromkeys(['DSA_OPS', 'DatasetOptions', 'SynthesizerOptions'], ".data.options"),
    **dict.fromkeys(['ModelName', 'ModelSpec', 'is_model_name', 'validated_model_name', 'validated_model_spec'],
                    ".models.options"),
    **dict.fromkeys(['RunContext', 'Task', 'build_model', 'label_like', 'random_subset_draw'], ".api.context"),
    **dict.fromkeys(['AugParams', 'DSA', 'DatasetSource', 'RawSplits', 'RealData', 'crop_flip'], ".data"),
    **dict.fromkeys(['cache_dir'], ".data.realdata"),
    **dict.fromkeys(['CondenseryError', 'DivergenceError', 'UserError'], ".api.errors"),
    **dict.fromkeys(['DoneStore', 'class_counts', 'draw_real', 'evaluate_next_to_random', 'random_like'], ".evaluation"),
    **dict.fromkeys(['GenerateOptions', 'Generator', 'load_generator', 'read_generator_config', 'save_generator', 'task_config'], ".generators"),
    **dict.fromkeys(['embed', 'embed_batched'], ".models"),
    **dict.fromkeys(['Options'], ".api.options"),
    **dict.fromkeys(['Runtime', 'make_generator', 'seed_global', 'seed_global_from'], ".api.runtime"),
    **dict.fromkeys(['RuntimeOptions'], ".api.runtime_options"),
    **dict.fromkeys(['SyntheticSet'], ".api.synthetic"),
    **dict.fromkeys(['load_teacher', 'load_teacher_into', 'read_teacher', 'save_teacher'], ".teachers"),
    **dict.fromkeys(['context_of', 'load_plan', 'open_task', 'read_recipe', 'task_record'], ".tasks"),
    **dict.fromkeys(['check_set', 'class_index', 'to_task_space'], ".task_space"),
    **dict.fromkeys(['read_safetensors'], ".tensorfile"),
    **dict.fromkeys(['BatchLoss', 'accuracy', 'backward_step', 'predict', 'soft_cross_entropy',
                    'squared_error', 'train_classifier'], ".training"),
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
    from ._engine.plugins import get_registry  # noqa: F401
    from ._engine.rundir import write_json, write_yaml  # noqa: F401
    from ._engine.runner import environment  # noqa: F401
    from .api.checkpoints import CheckpointStore  # noqa: F401
    from .api.components import Component, Evaluator, Matcher, Result, Synthesizer  # noqa: F401
    from .api.context import (  # noqa: F401
        RunContext,
        Task,
        build_model,
        label_like,
        random_subset_draw,
    )
    from .api.errors import CondenseryError, DivergenceError, UserError  # noqa: F401
    from .api.files import atomic_path, write_atomic  # noqa: F401
    from .api.options import Options  # noqa: F401
    from .api.progress import say, set_quiet  # noqa: F401
    from .api.runtime import Runtime, make_generator, seed_global, seed_global_from  # noqa: F401
    from .api.runtime_options import RuntimeOptions  # noqa: F401
    from .api.synthetic import SyntheticSet  # noqa: F401
    from .compare import (  # noqa: F401
        comparisons,
        describe_comparison,
        paired_interval,
        pooled_interval,
        result_lines,
        welch_interval,
    )
    from .data import (  # noqa: F401
        DSA,
        AugParams,
        DatasetSource,
        RawSplits,
        RealData,
        crop_flip,
    )
    from .data.options import DSA_OPS, DatasetOptions, SynthesizerOptions  # noqa: F401
    from .data.realdata import cache_dir  # noqa: F401
    from .evaluation import DoneStore, class_counts, draw_real, evaluate_next_to_random, random_like  # noqa: F401
    from .generators import (  # noqa: F401
        GenerateOptions,
        Generator,
        load_generator,
        read_generator_config,
        save_generator,
        task_config,
    )
    from .models import embed, embed_batched  # noqa: F401
    from .models.options import (  # noqa: F401
        ModelName,
        ModelSpec,
        is_model_name,
        validated_model_name,
        validated_model_spec,
    )
    from .resumable import LoopCheckpoint, SavedLoop, loop_fingerprint  # noqa: F401
    from .task_space import check_set, class_index, to_task_space  # noqa: F401
    from .tasks import context_of, load_plan, open_task, read_recipe, task_record  # noqa: F401
    from .teachers import load_teacher, load_teacher_into, read_teacher, save_teacher  # noqa: F401
    from .tensorfile import read_safetensors  # noqa: F401
    from .training import (  # noqa: F401
        BatchLoss,
        accuracy,
        backward_step,
        predict,
        soft_cross_entropy,
        squared_error,
        train_classifier,
    )

__all__ = [
    "__version__", "hookimpl", "get_registry", "set_quiet", "Options", "Component", "Synthesizer", "SynthesizerOptions",
    "Matcher", "Evaluator", "Result", "SyntheticSet", "RunContext", "Task", "build_model", "random_subset_draw",
    "label_like", "random_like", "draw_real", "class_counts", "evaluate_next_to_random", "DoneStore",
    "Runtime", "RuntimeOptions", "make_generator", "seed_global", "seed_global_from", "read_safetensors", "RealData", "DatasetSource", "DatasetOptions",
    "RawSplits", "DSA", "AugParams", "crop_flip", "CheckpointStore", "LoopCheckpoint",
    "SavedLoop", "loop_fingerprint", "UserError", "DivergenceError", "CondenseryError",
    "Generator", "GenerateOptions", "save_generator", "load_generator", "read_generator_config", "task_config",
    "open_task", "context_of", "load_plan", "read_recipe", "task_record", "cache_dir",
    "check_set", "class_index", "to_task_space", "is_model_name", "DSA_OPS",
    "ModelName", "ModelSpec", "validated_model_name", "validated_model_spec",
    "say", "atomic_path", "write_atomic", "write_json", "write_yaml", "environment",
    "comparisons", "describe_comparison", "paired_interval", "welch_interval", "pooled_interval", "result_lines",
    "save_teacher", "read_teacher", "load_teacher", "load_teacher_into",
    "train_classifier", "BatchLoss", "backward_step", "embed", "embed_batched", "predict", "accuracy", "soft_cross_entropy",
    "squared_error",
]
