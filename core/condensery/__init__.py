"""condensery: dataset distillation behind one plugin interface.

The public API plugins use. The core holds no method: synthesizers, matchers and
evaluators arrive through the ``condensery`` entry-point group.
"""

__version__ = "0.1.0"

from .checkpoints import CheckpointStore, load_optimizer_state, optimizer_state  # noqa: E402
from .compare import (  # noqa: E402
    comparisons,
    describe_comparison,
    paired_interval,
    pooled_interval,
    result_lines,
    welch_interval,
)
from .components import (  # noqa: E402
    Component,
    Evaluator,
    Matcher,
    Result,
    Synthesizer,
    SynthesizerOptions,
)
from .context import RunContext, Task, build_model, label_like, random_subset_draw  # noqa: E402
from .data import DSA, AugParams, DatasetOptions, DatasetSource, RawSplits, RealData, crop_flip  # noqa: E402
from .data.realdata import cache_dir  # noqa: E402
from .errors import CondenseryError, DivergenceError, UserError  # noqa: E402
from .generators import (  # noqa: E402
    GenerateOptions,
    Generator,
    load_generator,
    read_generator_config,
    save_generator,
    task_config,
)
from .hookspecs import hookimpl  # noqa: E402
from .models import embed, embed_batched  # noqa: E402
from .options import Options  # noqa: E402
from .runtime import Runtime, RuntimeOptions, make_generator  # noqa: E402
from .synthetic import SyntheticSet  # noqa: E402
from .tasks import context_of, open_task  # noqa: E402
from .tensorfile import read_safetensors  # noqa: E402
from .training import accuracy, predict, soft_cross_entropy, train_classifier  # noqa: E402

__all__ = [
    "__version__", "hookimpl", "Options", "Component", "Synthesizer", "SynthesizerOptions",
    "Matcher", "Evaluator", "Result", "SyntheticSet", "RunContext", "Task", "build_model", "random_subset_draw",
    "label_like",
    "Runtime", "RuntimeOptions", "make_generator", "read_safetensors", "RealData", "DatasetSource", "DatasetOptions",
    "RawSplits", "DSA", "AugParams", "crop_flip", "CheckpointStore", "optimizer_state",
    "load_optimizer_state", "UserError", "DivergenceError", "CondenseryError",
    "Generator", "GenerateOptions", "save_generator", "load_generator", "read_generator_config", "task_config",
    "open_task", "context_of", "cache_dir",
    "comparisons", "describe_comparison", "paired_interval", "welch_interval", "pooled_interval", "result_lines",
    "train_classifier", "embed", "embed_batched", "predict", "accuracy", "soft_cross_entropy",
]
