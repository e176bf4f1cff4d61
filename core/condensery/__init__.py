"""condensery: dataset distillation behind one plugin interface.

A plugin is written against the contract, ``condensery.api`` (hook specs, component bases,
``SyntheticSet``, ``Task`` / ``RunContext`` and what they offer, options, errors). This module
exports the contract and the few helpers that two or more plugins, or users, need; the other
public names live in the modules ``PUBLIC_MODULES`` lists, each with its ``__all__``. The
engine that runs recipes (``condensery._engine``: the command line, the runner, recipes, the
registry) is private. No method lives in the core: every component, the built-in datasets
and models included, arrives through the ``condensery`` entry-point group.

Names are imported on first use (PEP 562), so ``import condensery`` -- what every plugin
module does for ``hookimpl`` -- imports no torch, and ``condensery --help`` stays fast.
"""

from __future__ import annotations

from . import api
from .api._lazy import lazy_exports
from .api.hookspecs import hookimpl as hookimpl  # eager: every plugin module asks for it first

__version__ = "0.1.0"

#: modules besides this one whose ``__all__`` plugins and tools may import (``docs/writing-plugins.md``)
PUBLIC_MODULES = (
    "api", "api.capabilities", "api.checkpoints", "api.files", "api.hookspecs", "api.progress",  # the contract's modules
    "data", "models",  # services: augmentation and the data cache; features of a network, model options
    "training", "evaluation", "compare", "teachers", "task_space", "generators", "resumable", "tasks",  # helpers
    "outputs",  # the write rule every command that writes obeys
)

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".api": api.__all__,
    # helpers, each used by two or more plugins, or by tools and docs
    "._engine.plugins": ("get_registry",),
    ".tasks": ("open_task", "context_of", "load_plan"),
    ".resumable": ("LoopCheckpoint", "loop_fingerprint"),
    ".training": ("train_classifier", "backward_step", "seed_global_from"),
})
