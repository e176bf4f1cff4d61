"""Logs a run to the trackers named in ``runtime.log_with``, through Accelerate.

The core creates the run's Accelerator with ``log_with`` and ``project_dir=RUN_DIR``, so
local trackers write under ``RUN_DIR/trackers/<recipe name>``. This plugin only turns
run events into tracker calls: the resolved recipe as hyperparameters at the start,
every logged step metric as it arrives, the final results at the end. The run events
fire on the main process only, and Accelerate's trackers log only there too.

Step numbers: trackers such as wandb need one increasing step per run, while a run's
loops each count from 0. Each logged row therefore goes to the tracker at its row number
in ``logs/steps.jsonl`` (a resumed run continues after the rows already written), with
the loop's own step alongside as ``<stage>/step``.
"""

from __future__ import annotations

import json
from typing import Any

from condensery import hookimpl

#: per-run state, keyed by the RunContext (several runs may share a process, one at a time)
_NEXT_ROW: dict[int, int] = {}


def flat_config(recipe: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested recipe -> ``{"synthesizer.matcher.batch_real": 64, ...}`` with tracker-safe values.

    Trackers take numbers, text and booleans as hyperparameters: lists and None become text.
    """
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_config(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str)
    return out


def final_values(metrics: dict[str, Any]) -> dict[str, float]:
    """The run's headline numbers: each arm's mean and std, each paired difference and its interval."""
    out: dict[str, float] = {}
    for r in metrics.get("results", []):
        if not isinstance(r.get("mean"), (int, float)):
            continue
        key = "/".join(str(part) for part in ("results", r.get("evaluator"), r.get("model"), r.get("arm"), r.get("set"))
                       if part not in (None, "method"))
        out[f"{key}/mean"] = float(r["mean"])
        if isinstance(r.get("std"), (int, float)):
            out[f"{key}/std"] = float(r["std"])
    for c in metrics.get("comparisons", []):
        key = "/".join(str(part) for part in ("difference", c.get("evaluator"), c.get("model"), c.get("arm"))
                       if part not in (None, "method"))
        out[key] = float(c["difference"])
        if c.get("ci95"):
            out[f"{key}/ci95_low"], out[f"{key}/ci95_high"] = (float(v) for v in c["ci95"])
    for stage, seconds in metrics.get("seconds", {}).items():
        out[f"seconds/{stage}"] = float(seconds)
    return out


def _rows_written(context: Any) -> int:
    """Rows of ``logs/steps.jsonl`` written before this attempt (the tracker's step continues there)."""
    path = context.run_dir / "logs" / "steps.jsonl" if context.run_dir is not None else None
    if path is None or not path.is_file():
        return 0
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _tracking(context: Any) -> bool:
    return bool(getattr(context.runtime, "log_with", None))


@hookimpl
def on_run_start(context: Any) -> None:
    if not _tracking(context):
        return
    accelerator = context.runtime.accelerator
    name = str(context.recipe.get("name") or "condensery")
    accelerator.init_trackers(name, config=flat_config(context.recipe))
    _NEXT_ROW[id(context)] = _rows_written(context)


@hookimpl
def on_step(context: Any, stage: str, step: int, metrics: dict[str, float]) -> None:
    if not _tracking(context) or id(context) not in _NEXT_ROW:
        return
    row = _NEXT_ROW[id(context)]
    values = {f"{stage}/{k}": float(v) for k, v in metrics.items()}
    values[f"{stage}/step"] = float(step)
    context.runtime.accelerator.log(values, step=row)
    _NEXT_ROW[id(context)] = row + 1


@hookimpl
def on_run_end(context: Any, metrics: dict[str, Any]) -> None:
    if not _tracking(context) or id(context) not in _NEXT_ROW:
        return
    accelerator = context.runtime.accelerator
    accelerator.log(final_values(metrics), step=_NEXT_ROW.pop(id(context)))
    accelerator.end_training()
