"""``condensery eval``: judge an existing distilled set under a recipe's evaluators.

Builds the same RunContext a run would (data, task, runtime) without synthesizing, then
judges the set as ``condensery run`` does (``condensery.evaluation.evaluate_next_to_random``: every
evaluator, and the random real subset with the same images per class). Writes
``metrics.json`` with the run schema. An evaluation that is killed resumes: each finished
(evaluator, set) pair is kept under the output's ``checkpoints/`` until ``metrics.json`` is
written, in a file named after the set and the resolved recipe.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from condensery import RunContext, SyntheticSet, UserError, context_of, load_plan, say
from condensery.api.files import write_json, write_yaml
from condensery.compare import comparisons, result_lines
from condensery.evaluation import DoneStore, class_counts, evaluate_next_to_random
from condensery.outputs import claim_output, run_lock
from condensery.tasks import task_record

from .caches import key_of
from .sets import load_set

#: the mark of an evaluation folder (``condensery.outputs``): which set, under which recipe
EVAL_MARK = "eval.json"
EVAL_FORMAT = "condensery.eval/1"


def plan_for_eval(recipe: str | Path, overrides: list[str], registry: Any):
    """The recipe resolved as for a run; it needs no synthesizer (it only states the task)."""
    return load_plan(recipe, registry, overrides=overrides)


def context_for(plan: Any, registry: Any, run_dir: Path | None) -> RunContext:
    """Runtime, data and task of ``plan``, as ``condensery run`` builds them, without synthesis."""
    return context_of(plan, registry, run_dir=run_dir)


#: evaluator options that change how many networks are measured, not how each is trained
_NOT_PROTOCOL = ("runs", "random_draws", "paired", "random_lr_factors")
_SHOWN = {"protocol": "evaluators"}  # record key -> the recipe section a user would edit


def task_differences(distilled: dict[str, Any] | None, evaluated: dict[str, Any]) -> list[str]:
    """``key old -> new`` for each task field where a set's recorded task and a recipe's differ.

    Compares the dataset (and its task options such as ``classes``), classes, image shape,
    model, evaluation protocol and metric; fields an older set did not record are skipped.
    """
    if not distilled:
        return []
    out: list[str] = []

    def clean(key: str, value: Any) -> Any:
        if key == "protocol" and isinstance(value, list):
            return [{k: v for k, v in e.items() if k not in _NOT_PROTOCOL} if isinstance(e, dict) else e for e in value]
        return value

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=lambda k: (k != "name", str(k))):
                walk(a.get(k, "(default)"), b.get(k, "(default)"), f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(isinstance(x, dict) for x in a + b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            out.append(f"{path} {_short(a)} -> {_short(b)}")

    for key in ("dataset", "data", "num_classes", "image_shape", "model", "protocol", "metric"):
        if key in distilled and key in evaluated:
            walk(clean(key, distilled[key]), clean(key, evaluated[key]), _SHOWN.get(key, key))
    return out


def _short(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
        return "[" + ", ".join(str(e.get("name", "?")) for e in value) + "]"
    return str(value)


def set_key(synset: SyntheticSet, resolved: dict[str, Any]) -> str:
    """A short hash of the set's tensors and metadata and of the resolved recipe: the finished
    evaluations kept under one key are those of this very set under this very recipe."""
    tensors = [t for t in (synset.images, synset.labels, synset.stages, synset.classes) if t is not None]
    digest = hashlib.sha1(b"".join(t.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes()
                                   for t in tensors)).hexdigest()
    return key_of(digest, synset.lr, synset.stage_lrs, synset.metadata, resolved)


def warn_task_mismatch(synset: SyntheticSet, plan: Any, ctx: RunContext) -> list[str]:
    """Print one warning line when the set was distilled for another task than the recipe's."""
    diffs = task_differences(synset.metadata.get("task"), task_record(plan, ctx.task))
    if diffs:
        import click

        click.echo(f"warning: the set was distilled for another task than this recipe states ({'; '.join(diffs)}); "
                   "its accuracy here measures transfer, not the task it was distilled for", err=True)
    return diffs


def claim_eval_dir(out: Path, synset_path: Path, key: str, force: bool) -> None:
    """``out`` is this evaluation's folder: ``eval.json`` (its mark) names this set and recipe.

    An evaluation of another set or recipe there is refused (its metrics would be replaced by
    this one's) unless ``force``; the mark is written before anything is evaluated, so an
    interrupted evaluation is recognised when it is resumed.
    """
    mark = out / EVAL_MARK
    if mark.is_file() and not force:
        try:
            old = json.loads(mark.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            old = {}
        if not isinstance(old, dict) or old.get("key") != key:
            source = old.get("source") if isinstance(old, dict) else None
            raise UserError(f"-o '{out}' holds the evaluation of another set or recipe ('{mark}': {source}); "
                            "pass --force to replace it, or choose another -o")
    write_json(mark, {"format": EVAL_FORMAT, "source": str(synset_path), "key": key})


def run_eval(synset_path: str | Path, recipe: str | Path, output: str | Path | None,
             overrides: list[str], registry: Any, force: bool = False) -> tuple[dict[str, Any], Path]:
    """Evaluate the set at ``synset_path`` under ``recipe``; write ``metrics.json`` into ``output``."""
    t0 = time.perf_counter()
    synset_path = Path(synset_path)
    if not synset_path.exists():
        raise UserError(f"synthetic set '{synset_path}' does not exist; give a .safetensors file or an ImageFolder folder")
    plan = plan_for_eval(recipe, overrides, registry)
    if output is None:
        stem = "" if synset_path.suffix == ".safetensors" else f"{synset_path.name}-"
        output = synset_path.parent / f"eval-{stem}{plan.name}"
    out = Path(output)
    claim_output(out, "eval", force=force, reads=[synset_path])
    ctx = context_for(plan, registry, out)
    with run_lock(out, take=ctx.runtime.is_main):
        return _evaluate(synset_path, plan, ctx, out, force, t0)


def _evaluate(synset_path: Path, plan: Any, ctx: RunContext, out: Path, force: bool,
              t0: float) -> tuple[dict[str, Any], Path]:
    """The evaluation itself, under the output folder's lock."""
    from condensery.evaluation import environment  # imports the run pipeline: only when evaluating

    synset = load_set(synset_path, ctx.task, getattr(ctx.data, "zca", None))
    counts = class_counts(synset, ctx.task.num_classes)
    ipc = counts[0] if len(set(counts)) == 1 else round(len(synset) / ctx.task.num_classes, 2)
    mismatch = warn_task_mismatch(synset, plan, ctx)
    key = set_key(synset, plan.resolved)
    if ctx.runtime.is_main:
        claim_eval_dir(out, synset_path, key, force)
    say(f"[eval] {synset_path} ({len(synset)} images, ipc {ipc}) on {plan.data_name}, device {ctx.device}")
    t = time.perf_counter()
    done = DoneStore(ctx.checkpoints.folder / f"evaluate-{key}.json",
                     write=ctx.runtime.is_main)
    results = evaluate_next_to_random(ctx, plan.evaluators, synset, done)
    seconds = {"evaluate": time.perf_counter() - t, "total": time.perf_counter() - t0}
    metrics = {
        "recipe": plan.name, "method": synset.metadata.get("method", synset_path.stem),
        **({"matcher": synset.metadata["matcher"]} if synset.metadata.get("matcher") else {}),
        "dataset": plan.data_name, "ipc": ipc, "num_images": len(synset), "source": str(synset_path),
        "results": [r.to_json() for r in results],
        "comparisons": comparisons(results),
        **({"task_mismatch": mismatch} if mismatch else {}),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "environment": environment(ctx.runtime),
    }
    if ctx.runtime.is_main:
        write_yaml(out / "recipe.yaml", plan.resolved)
        write_json(out / "metrics.json", metrics)
        done.path.unlink(missing_ok=True)  # finished: evaluating the set again starts afresh
    for line in result_lines(results, metrics["comparisons"]):
        say(line)
    return metrics, out
