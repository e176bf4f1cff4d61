"""The pipeline of ``condensery run``: recipe -> data -> synthesize -> save -> evaluate -> metrics."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..api import progress as progress_module
from ..api.context import Task
from ..api.data import RealData
from ..api.errors import UserError
from ..api.files import write_json, write_yaml
from ..api.progress import say, set_quiet
from ..api.runtime import Runtime
from ..api.synthetic import SyntheticSet
from ..compare import comparisons, result_lines
from ..evaluation import DoneStore, environment, evaluate_next_to_random
from ..figures import save_grid, write_curves
from ..outputs import check_run_identity
from ..tasks import context_of, task_record
from .identity import run_lock
from .recipe import Plan
from .registry import Registry


def run(plan: Plan, registry: Registry, out_dir: str | Path | None = None, force: bool = False,
        evaluate: bool = True) -> dict[str, Any]:
    """Run ``plan`` and write its run directory; a finished run is reused unless ``force``.

    ``evaluate=False`` (``--no-eval``) stops after the set, its pictures and the logs: no
    ``metrics.json`` is written, so the same command without it later evaluates the saved
    set (a synthesis-only or timing run, with the recipe unchanged).

    Every process of a multi-process run executes this function; components split their
    work with ``ctx.runtime.split`` / ``gather``, and only the main process writes files.
    An interrupted run resumes: the set is reused once synthesized, each finished
    evaluation is kept in ``checkpoints/evaluate.json``, and synthesizers resume from
    their own checkpoints.
    """
    run_dir = run_dir_of(plan, out_dir)
    if check_run_identity(run_dir, plan.resolved, registry, force):
        return finished_metrics(run_dir)

    t0 = time.perf_counter()
    runtime = Runtime(plan.runtime, plan.seed, announce=not progress_module._QUIET, project_dir=run_dir)
    if not runtime.is_main:
        set_quiet(True)  # one progress bar and one set of status lines, from the main process
    with run_lock(run_dir, take=runtime.is_main):  # one writer for the whole run; ranks share the main's
        if runtime.is_main:
            prepare_run_dir(plan, run_dir, force)
            if not force and (run_dir / "logs" / "steps.jsonl").is_file():  # resuming: the first attempt's curves
                save_curves(run_dir)
        runtime.wait()  # nobody reads a checkpoint the main process is about to remove
        try:
            return _run_in(plan, registry, run_dir, runtime, t0, evaluate)
        finally:
            runtime.close()


def save_picture(synset: SyntheticSet, data: RealData, task: Task, run_dir: Path) -> None:
    """``grid.png`` of the set, in display space (ZCA undone), one row per class with its name."""
    shown = synset.images if data.zca is None else data.zca.inverse(synset.images.detach())
    save_grid(shown, synset.hard_labels, task.mean, task.std, run_dir / "grid.png", class_names=task.class_names)


def save_curves(run_dir: Path) -> None:
    """``curves.png``: every logged loss against its step; a picture that fails never fails the run."""
    try:
        write_curves(run_dir)
    except Exception as exc:  # noqa: BLE001 -- the run's results matter more than its figure
        say(f"warning: could not write {run_dir / 'curves.png'}: {type(exc).__name__}: {exc}")


def finished_metrics(run_dir: Path) -> dict[str, Any]:
    """The metrics of a finished run of this very recipe, reused as they are."""
    say(f"{run_dir} is already finished (metrics.json exists, same recipe); pass --force to run it again")
    path = run_dir / "metrics.json"
    if not (run_dir / "curves.png").is_file():  # killed after metrics.json, before its picture
        save_curves(run_dir)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"'{path}' is not valid JSON ({exc}); pass --force to run it again") from None


def _run_in(plan: Plan, registry: Registry, run_dir: Path, runtime: Runtime, t0: float,
            evaluate: bool = True) -> dict[str, Any]:
    """The run itself, under the run directory's lock."""
    timings: dict[str, float] = {}
    metrics_path = run_dir / "metrics.json"
    ctx = context_of(plan, registry, runtime=runtime, run_dir=run_dir)  # the main process decodes first
    timings["data"] = time.perf_counter() - t0
    task, data = ctx.task, ctx.data
    ipc = plan.synthesizer.options.ipc
    smallest = min(data.class_count(c) for c in range(data.num_classes))
    if smallest < ipc:
        raise UserError(f"ipc {ipc} exceeds the smallest class of '{plan.data_name}' ({smallest} training images); lower synthesizer.ipc")

    with torch.random.fork_rng(devices=[]):  # a bad model option fails now, before recipe.yaml claims the directory,
        ctx.create_model()                    # and the trial build leaves the seeded RNG untouched
    if runtime.is_main:
        write_yaml(run_dir / "recipe.yaml", plan.resolved)
    if plan.matcher is not None:
        plan.matcher.prepare(ctx)
    if runtime.is_main:  # run events fire once per run, whatever the number of processes
        registry.pm.hook.on_run_start(context=ctx)
    runtime.say(f"[{plan.name}] {plan.synthesizer_name} on {plan.data_name}: ipc {ipc}, "
                f"{data.num_classes} classes, {len(data.train_x)} train images, device {runtime.device}"
                + (f", {runtime.num_processes} processes" if runtime.num_processes > 1 else ""))

    t = time.perf_counter()
    synset_path = run_dir / "synthetic.safetensors"
    reused: list[str] = []
    if synset_path.is_file():
        # written only after synthesis finished, under this very recipe (prepare_run_dir checked)
        synset = SyntheticSet.load(synset_path)
        runtime.say(f"  reusing the finished set {synset_path}")
        reused.append("synthesize")
        if runtime.is_main and not (run_dir / "grid.png").is_file():  # killed between the set and its picture
            save_picture(synset, data, task, run_dir)
    else:
        synset = plan.synthesizer.synthesize(ctx)
        if not isinstance(synset, SyntheticSet):
            raise UserError(f"synthesizer '{plan.synthesizer_name}' returned {type(synset).__name__}, not a SyntheticSet")
        synset = share_main_copy(runtime, synset)
        synset.metadata.update(
            method=plan.synthesizer_name, matcher=plan.matcher_name, recipe=plan.name, ipc=ipc,
            num_classes=task.num_classes, class_names=task.class_names, mean=task.mean, std=task.std,
            seed=plan.seed, task=task_record(plan, task), versions={"condensery": __version__, "torch": torch.__version__},
            # kept with the set so a run resumed during evaluation still reports what synthesis cost
            seconds_synthesize=round(time.perf_counter() - t, 3),
        )
        if data.zca is not None:  # evaluation elsewhere must whiten real data the same way
            synset.metadata["zca"] = data.zca.info()
        if runtime.is_main:
            synset.save(synset_path)
            save_picture(synset, data, task, run_dir)
            save_curves(run_dir)
    timings["synthesize"] = float(synset.metadata.get("seconds_synthesize", time.perf_counter() - t))

    if not evaluate:
        return synthesis_only(plan, runtime, run_dir, synset, timings, t0, reused)

    t = time.perf_counter()
    # each finished (evaluator, set) pair is kept, so a run killed during evaluation redoes only the rest
    done = DoneStore(ctx.checkpoints.folder / "evaluate.json", write=runtime.is_main,
                     fix="pass --force to start the run over")
    results = evaluate_next_to_random(ctx, plan.evaluators, synset, done)
    timings["evaluate"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    metrics = {
        "recipe": plan.name, "method": plan.synthesizer_name, "matcher": plan.matcher_name,
        "dataset": plan.data_name, "ipc": ipc, "num_images": len(synset),
        "results": [r.to_json() for r in results],
        "comparisons": comparisons(results),  # synthetic − random with a 95 % interval, per evaluator and model
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "reused": reused,  # stages taken from an earlier, interrupted attempt (their seconds are that attempt's)
        "environment": environment(runtime),
    }
    write_process_logs(runtime, run_dir, timings)
    if runtime.is_main:
        write_json(metrics_path, metrics)
        save_curves(run_dir)
    if runtime.is_main:
        registry.pm.hook.on_run_end(context=ctx, metrics=metrics)
    for line in result_lines(results, metrics["comparisons"]):
        runtime.say(line)
    runtime.wait()  # the main process has written everything before anyone exits
    return metrics


def synthesis_only(plan: Plan, runtime: Runtime, run_dir: Path, synset: SyntheticSet, timings: dict[str, float],
                   t0: float, reused: list[str]) -> dict[str, Any]:
    """End a ``--no-eval`` run: logs and curves, no ``metrics.json`` (the run stays unevaluated)."""
    timings["total"] = time.perf_counter() - t0
    write_process_logs(runtime, run_dir, timings)
    if runtime.is_main:
        save_curves(run_dir)
    runtime.say(f"  synthesis only (--no-eval): {timings['synthesize']:.1f} s; "
                f"rerun without --no-eval to evaluate {run_dir / 'synthetic.safetensors'}")
    runtime.wait()
    return {"recipe": plan.name, "evaluated": False, "num_images": len(synset), "results": [],
            "seconds": {k: round(v, 3) for k, v in timings.items()}, "reused": reused}


def run_dir_of(plan: Plan, out_dir: str | Path | None = None) -> Path:
    """The run directory: ``out_dir`` or ``runs/<recipe name>``."""
    return Path(out_dir) if out_dir else Path("runs") / plan.name


def is_finished(plan: Plan, registry: Registry, out_dir: str | Path | None = None, force: bool = False) -> bool:
    """Whether ``out_dir`` holds a finished run of this very recipe (another recipe's: a UserError)."""
    return check_run_identity(run_dir_of(plan, out_dir), plan.resolved, registry, force)


def prepare_run_dir(plan: Plan, run_dir: Path, force: bool) -> None:
    """Start over with ``force`` (what the directory holds was checked by ``check_identity``)."""
    if force:  # everything the run writes, so the curves and trackers show this run alone
        for name in ("metrics.json", "synthetic.safetensors", "grid.png", "curves.png", "last-sane.safetensors"):
            (run_dir / name).unlink(missing_ok=True)
        for folder in ("checkpoints", "logs", "trackers"):
            shutil.rmtree(run_dir / folder, ignore_errors=True)


def share_main_copy(runtime: Runtime, synset: SyntheticSet) -> SyntheticSet:
    """Give every process the main process's set, bit for bit, before evaluation.

    Processes keep identical sets by construction (summed gradients); this makes the
    evaluated set exactly the saved one even if float reductions ever differed.
    """
    if runtime.num_processes == 1:
        return synset
    for t in (synset.images, synset.labels):
        runtime.broadcast_(t.data if t.requires_grad else t)
    return synset


def write_process_logs(runtime: Runtime, run_dir: Path, timings: dict[str, float]) -> None:
    """``logs/process-<i>.json``: what share of the work each process did, written by main."""
    mine = {
        "process": runtime.process_index, "processes": runtime.num_processes,
        "device": str(runtime.device), "shares": runtime.shares,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }
    every = runtime.gather([mine])
    if runtime.is_main:
        for entry in every:
            write_json(run_dir / "logs" / f"process-{entry['process']}.json", entry)
