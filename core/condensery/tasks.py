"""Open a task from a recipe: the one place a RunContext is built outside ``condensery run``.

``eval``, ``generate`` and tools state a task (data, model, evaluators, runtime, seed)
without a method; they resolve it with ``needs_synthesizer=False`` and get the same
runtime, data and Task a run of that recipe would see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .context import RunContext
from .recipe import Plan, apply_overrides, resolve
from .runtime import Runtime


def context_of(plan: Plan, registry: Any, run_dir: str | Path | None = None, announce: bool = True,
               matcher: Any = None) -> RunContext:
    """Runtime, data and task of ``plan``, as ``condensery run`` builds them, without synthesis."""
    from .runner import load_data, make_task

    runtime = Runtime(plan.runtime, plan.seed, announce=announce)
    data = load_data(plan, runtime)
    return RunContext(make_task(plan, data), data, runtime, registry, run_dir, plan.resolved,
                      matcher if matcher is not None else plan.matcher)


def open_task(doc: dict[str, Any], registry: Any, run_dir: str | Path | None = None,
              overrides: list[str] | None = None, announce: bool = True,
              matcher: Any = None) -> tuple[Plan, RunContext]:
    """Resolve ``doc`` (plus ``--set`` overrides; a synthesizer is optional) and open its task."""
    plan = resolve(apply_overrides(dict(doc), overrides or []), registry, needs_synthesizer=False)
    return plan, context_of(plan, registry, run_dir, announce, matcher)
