"""Open a task from a recipe: the one place a RunContext is built.

``condensery run`` and everything that states a task without synthesizing (``eval``,
``generate``, ``analyze``, ``experts``, tools) go through ``context_of``, so they all get
the runtime, data and Task a run of that recipe would see. A recipe that only states a task
(data, model, evaluators, runtime, seed) resolves with ``needs_synthesizer=False``.

Imports stay light (no torch) until a context is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._engine.recipe import Plan, apply_overrides, load_yaml, resolve

if TYPE_CHECKING:
    from .api.components import Matcher
    from .api.context import RunContext, Task
    from .api.data import RealData
    from .api.runtime import Runtime

__all__ = ["open_task", "context_of", "load_plan", "read_recipe", "task_record"]


def read_recipe(path: str | Path) -> dict[str, Any]:
    """A recipe file's mapping as written (a UserError when it is missing or not YAML)."""
    return load_yaml(path)


def load_plan(recipe: str | Path | dict[str, Any], registry: Any, *, overrides: list[str] | None = None,
              needs_synthesizer: bool = False) -> Plan:
    """A recipe (a YAML path or a mapping) with ``--set`` overrides, validated and built.

    ``needs_synthesizer=True`` is what ``condensery run`` asks: the recipe must name a method.
    """
    doc = read_recipe(recipe) if isinstance(recipe, (str, Path)) else dict(recipe)
    return resolve(apply_overrides(doc, overrides or []), registry, needs_synthesizer=needs_synthesizer)


def load_data(plan: Plan, runtime: Runtime) -> RealData:
    """The plan's real data (its class and size restrictions applied), on the runtime's device."""
    from .api.data import RealData
    from .data.realdata import load_raw, restrict

    opts = plan.source.options
    raw = restrict(load_raw(plan.data_name, plan.source), getattr(opts, "classes", None),
                   getattr(opts, "train_per_class", None))
    return RealData.from_raw(plan.data_name, raw, opts.val_fraction, opts.normalize,
                             getattr(opts, "zca", False), getattr(opts, "zca_eps", 0.1)).to(runtime.device)


def make_task(plan: Plan, data: RealData) -> Task:
    """The Task of ``plan`` on ``data``: classes, shape and normalisation, model and protocol."""
    from .api.context import Task

    return Task(
        dataset=plan.data_name, num_classes=data.num_classes, class_names=data.class_names,
        image_shape=data.image_shape, mean=data.mean, std=data.std, model=dict(plan.model),
        protocol=plan.resolved["evaluators"],
    )


#: data options that say where files live, how fast they decode or how much real data a
#: CPU budget keeps; they do not change what the distilled set is for
_NOT_TASK_DATA = ("root", "cache", "workers", "val_fraction", "train_per_class")


def task_record(plan: Plan, task: Task) -> dict[str, Any]:
    """The task a set is distilled for, as stored in its metadata (``metadata["task"]``).

    Distillation is only well posed for a stated task: the dataset (with options such as
    ``classes``), the model, the evaluation protocol and the metric. ``condensery eval``
    compares this record with its recipe's and warns when a set is judged on another task.
    """
    data = {k: v for k, v in plan.resolved["data"].items() if k not in _NOT_TASK_DATA}
    return {**task.to_json(), "data": data, "metric": "test accuracy at the end of training"}


@contextmanager
def main_first(runtime: Runtime) -> Iterator[None]:
    """The main process runs the block first, then the others (e.g. to fill a cache once)."""
    if not runtime.is_main:
        runtime.wait()
    yield
    if runtime.is_main:
        runtime.wait()


def context_of(plan: Plan, registry: Any, *, run_dir: str | Path | None = None, announce: bool = True,
               matcher: Matcher | None = None, runtime: Runtime | None = None, data: RealData | None = None,
               context_class: type[RunContext] | None = None) -> RunContext:
    """Runtime, data and task of ``plan``, as ``condensery run`` builds them; nothing is synthesized.

    The main process decodes the data first (it fills the shared cache once), then the
    others. ``matcher`` defaults to the plan's. The rest exist for the callers that need
    them: ``runtime`` one already made (``run`` makes it before taking the run lock),
    ``data`` tensors already in memory (a benchmark's random data: the plan's data section
    then only names the task), ``context_class`` a RunContext subclass (a timing tool's).
    """
    from .api.context import RunContext
    from .api.runtime import Runtime

    if runtime is None:
        runtime = Runtime(plan.runtime, plan.seed, announce=announce)
    if data is None:
        with main_first(runtime):
            data = load_data(plan, runtime)
    else:
        data = data.to(runtime.device)
    cls = context_class or RunContext
    return cls(make_task(plan, data), data, runtime, registry, run_dir, plan.resolved,
               matcher if matcher is not None else plan.matcher)


def open_task(recipe: str | Path | dict[str, Any], registry: Any, *, overrides: list[str] | None = None,
              needs_synthesizer: bool = False, run_dir: str | Path | None = None, announce: bool = True,
              matcher: Matcher | None = None) -> tuple[Plan, RunContext]:
    """``load_plan`` then ``context_of``: a recipe (path or mapping, plus overrides) and its task."""
    plan = load_plan(recipe, registry, overrides=overrides, needs_synthesizer=needs_synthesizer)
    return plan, context_of(plan, registry, run_dir=run_dir, announce=announce, matcher=matcher)
