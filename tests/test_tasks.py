"""``condensery.open_task`` / ``context_of``: the one place a RunContext is built from a recipe."""

from __future__ import annotations

import pytest
import torch
from condensery import (
    RealData,
    RunContext,
    UserError,
    context_of,
    get_registry,
    load_plan,
    open_task,
)
from condensery.tasks import task_record

TASK_ONLY = {  # what `condensery eval` is given: a task, no method
    "name": "task-only", "seed": 3, "data": {"name": "digits"}, "model": {"name": "convnet", "depth": 1, "width": 8},
    "evaluators": [{"name": "hard-label", "runs": 1, "epochs": 1}], "runtime": {"threads": 1},
}


def test_a_task_recipe_needs_no_synthesizer_unless_a_run_asks_for_one():
    registry = get_registry()
    plan = load_plan(TASK_ONLY, registry)
    assert plan.synthesizer is None and plan.matcher is None and "synthesizer" not in plan.resolved
    with pytest.raises(UserError, match="synthesizer"):
        load_plan(TASK_ONLY, registry, needs_synthesizer=True)


def test_open_task_gives_the_runs_task_and_takes_a_context_class(tmp_path):
    class Timed(RunContext):
        pass

    registry = get_registry()
    plan, ctx = open_task(TASK_ONLY, registry, overrides=["data.classes=[0, 1, 2]"], announce=False)
    assert isinstance(ctx, RunContext) and ctx.run_dir is None and ctx.matcher is None
    assert ctx.task.num_classes == 3 == ctx.data.num_classes and ctx.recipe == plan.resolved
    assert ctx.task.protocol == plan.resolved["evaluators"] and ctx.runtime.seed == 3
    record = task_record(plan, ctx.task)
    assert record["data"]["classes"] == [0, 1, 2] and "root" not in record["data"]

    again = context_of(plan, registry, run_dir=tmp_path, announce=False, context_class=Timed)
    assert type(again) is Timed and again.run_dir == tmp_path
    assert torch.equal(again.data.train_x, ctx.data.train_x)  # same plan, same data


def test_context_of_takes_data_already_in_memory():
    registry = get_registry()
    plan = load_plan(TASK_ONLY, registry)
    x = torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(3).repeat_interleave(4)
    data = RealData("random", x, y, x[:0], y[:0], x[:3], y[:3], ["a", "b", "c"], [0.0], [1.0])
    ctx = context_of(plan, registry, data=data, announce=False)
    assert torch.equal(ctx.data.train_x, x) and ctx.task.class_names == ["a", "b", "c"]
    assert ctx.task.image_shape == (1, 8, 8) and ctx.task.dataset == "digits"
