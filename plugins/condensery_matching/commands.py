"""``condensery experts``: a light module (click only), so building the CLI imports no torch."""

from __future__ import annotations

from pathlib import Path

import click


# -- `condensery experts RECIPE` --------------------------------------------------------
@click.command("experts")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output", default=None, help="run directory (default runs/<name>); experts go to its experts/ unless the recipe sets experts_dir")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a recipe value")
@click.option("--num-experts", type=int, default=None, help="train this many (default: the recipe's num_experts)")
@click.option("--process-index", type=int, default=None, help="this process's index (default: from Accelerate)")
@click.option("--num-processes", type=int, default=None, help="number of processes sharing the work (default: from Accelerate)")
@click.option("--quiet", is_flag=True)
def experts_command(recipe, output, overrides, num_experts, process_index, num_processes, quiet) -> None:
    """Train the expert trajectories RECIPE's trajectory matcher needs (resumable, splittable).

    Expert i is trained by process i % num_processes; finished shards are skipped, so the
    same command resumes an interrupted job.
    """
    from condensery import Runtime, UserError, context_of, get_registry, load_plan, require
    from condensery.api.progress import set_quiet
    from condensery.outputs import check_run_identity, claim_output, run_lock

    from .capabilities import ExpertMatching
    from .experts import available_experts, train_experts

    set_quiet(quiet)
    registry = get_registry()
    plan = load_plan(recipe, registry, overrides=list(overrides), needs_synthesizer=True)
    if plan.matcher is None:
        raise UserError(f"recipe '{recipe}' has no matcher (synthesizer.matcher.name: trajectory); nothing to train")
    matcher = require(plan.matcher, ExpertMatching, "`condensery experts`")
    runtime = Runtime(plan.runtime, plan.seed)
    nproc = num_processes if num_processes is not None else runtime.num_processes
    pidx = process_index if process_index is not None else runtime.process_index
    if nproc < 1 or not 0 <= pidx < nproc:
        raise UserError(f"--process-index {pidx} must be in [0, --num-processes {nproc})")
    run_dir = Path(output) if output else Path("runs") / plan.name
    check_run_identity(run_dir, plan.resolved, registry)  # the run directory of this recipe, or a new one
    # one writer per run directory; the processes of a split job share it, each writing only its own shards
    with run_lock(run_dir, take=nproc == 1):
        ctx = context_of(plan, registry, runtime=runtime, run_dir=run_dir)
        spec = matcher.expert_spec(ctx)  # before prepare, which would train the experts itself
        directory = matcher.experts_directory(ctx)
        claim_output(directory, "experts", force=True, own_run=run_dir)  # not inside a generator or another run
        count = num_experts or matcher.options.num_experts
        done = train_experts(ctx, spec, directory, count, process_index=pidx, num_processes=nproc,
                             model_name=matcher.options.model)
    if not quiet:
        click.echo(f"trained {len(done)} expert(s) in {directory} (process {pidx} of {nproc}); "
                   f"{len(available_experts(directory, spec))} available")
