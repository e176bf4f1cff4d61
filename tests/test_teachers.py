"""One teacher file format: written with its model spec, read by DWA, the bnstats matcher and the
soft-label evaluator alike; bare state dicts load where the model is known; bad files are one line."""

from __future__ import annotations

import json

import pytest
import torch
from condensery import UserError
from condensery.teachers import load_teacher, read_teacher, save_teacher
from condensery.training import predict
from condensery_dwa.synthesizer import DWAOptions, DWASynthesizer
from condensery_eval.options import TeacherOptions
from condensery_eval.soft_label import SoftLabelEvaluator, SoftLabelOptions
from condensery_eval.teacher import _teacher_path
from condensery_matching.bnstats import BNStatsMatcher
from condensery_matching.options import BNStatsOptions
from safetensors.torch import save_file

from .conftest import digits_recipe, task_context

RECIPE = digits_recipe('teachertest', width=8)
BN = {"name": "convnet_bn", "depth": 2, "width": 8}  # not the task model: a wrong guess cannot load


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return task_context(RECIPE, tmp_path_factory.mktemp("run"))


def net(ctx, spec=BN, seed=0):
    torch.manual_seed(seed)
    model = ctx.create_model(spec["name"], **{k: v for k, v in spec.items() if k != "name"})
    with torch.no_grad():  # non-trivial BN running statistics
        model.train()
        model(ctx.data.train_x[:128])
    return model.eval()


def same_network(a, b, ctx) -> bool:
    return torch.equal(predict(a, ctx.data.test_x), predict(b, ctx.data.test_x))


def test_round_trip_rebuilds_the_model_from_its_header(ctx, tmp_path):
    model = net(ctx)
    path = save_teacher(tmp_path / "t.safetensors", model, BN, test_accuracy=0.5)
    tensors, header = read_teacher(path)
    assert header == {"model": BN, "test_accuracy": 0.5}
    assert all(torch.equal(tensors[k], v) for k, v in model.state_dict().items())
    loaded, _ = load_teacher(path, ctx)
    assert same_network(loaded, model, ctx) and not any(p.requires_grad for p in loaded.parameters())


def test_a_dwa_teacher_serves_as_soft_label_teacher_path(ctx):
    """No teacher.model in the recipe: the header names the architecture (not the task model's)."""
    dwa = DWASynthesizer(DWAOptions(ipc=1, teacher_model=BN, teacher_epochs=1, teacher_batch_size=256))
    teacher, path, header = dwa.squeeze(ctx)
    assert header["model"] == BN and "budget" in header
    soft = SoftLabelEvaluator(SoftLabelOptions(teacher={"path": path})).teacher(ctx)
    assert type(soft) is type(teacher) and same_network(soft, teacher, ctx)


def test_a_cached_soft_label_teacher_serves_bnstats_and_dwa(ctx, tmp_path):
    options = TeacherOptions(model="convnet_bn", model_options={"depth": 2, "width": 8}, epochs=1,
                             cache_dir=str(tmp_path))
    trained = SoftLabelEvaluator(SoftLabelOptions(teacher=options)).teacher(ctx)
    [cached] = tmp_path.glob("*.safetensors")
    assert cached == _teacher_path(ctx, options)  # the cache key and place are unchanged
    assert read_teacher(cached)[1]["model"] == BN
    matcher = BNStatsMatcher(BNStatsOptions(teacher=str(cached)))
    matcher.prepare(ctx)
    assert same_network(matcher.net, trained, ctx)
    matcher.close()
    dwa_teacher, _, _ = DWASynthesizer(DWAOptions(ipc=1, teacher=str(cached))).squeeze(ctx)
    assert same_network(dwa_teacher, trained, ctx)


def test_bare_state_dicts_load_where_the_model_is_known(ctx, tmp_path):
    task_net = net(ctx, dict(ctx.task.model), seed=1)
    bare = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in task_net.state_dict().items()}, str(bare))
    # soft-label teacher.path: the task model when the recipe names none
    soft = SoftLabelEvaluator(SoftLabelOptions(teacher={"path": str(bare)})).teacher(ctx)
    assert same_network(soft, task_net, ctx)
    assert same_network(load_teacher(bare, ctx, default=dict(ctx.task.model))[0], task_net, ctx)
    # a cache file holding a bare state dict (no header) under the cache key is reused, not retrained
    options = TeacherOptions(epochs=1, cache_dir=str(tmp_path / "cache"))
    old = _teacher_path(ctx, options)
    old.parent.mkdir()
    save_file({k: v.contiguous() for k, v in task_net.state_dict().items()}, str(old))
    assert same_network(SoftLabelEvaluator(SoftLabelOptions(teacher=options)).teacher(ctx), task_net, ctx)
    # the bnstats matcher knows no model: a bare file is refused in one line
    with pytest.raises(UserError, match="bare state dict") as err:
        BNStatsMatcher(BNStatsOptions(teacher=str(bare))).prepare(ctx)
    assert "\n" not in str(err.value)


def _headed(tmp_path, name: str, header: str):
    path = tmp_path / name
    save_file({"w": torch.zeros(1)}, str(path), metadata={"condensery_teacher": header})
    return path


def test_bad_teacher_files_are_one_line_errors(ctx, tmp_path):
    garbled = tmp_path / "garbled.safetensors"
    garbled.write_bytes(b"not a safetensors file")
    good = save_teacher(tmp_path / "bn.safetensors", net(ctx), BN)
    cases = [
        (lambda: read_teacher(tmp_path / "missing.safetensors"), "does not exist"),
        (lambda: load_teacher(garbled, ctx), "not a readable .safetensors"),
        (lambda: read_teacher(_headed(tmp_path, "json.safetensors", "{oops")), "damaged 'condensery_teacher' header"),
        (lambda: read_teacher(_headed(tmp_path, "spec.safetensors", json.dumps({"model": "x"}))), "damaged"),
        # mismatched: the recipe names another architecture than the file holds
        (lambda: load_teacher(good, ctx, spec=dict(ctx.task.model)), "written for model"),
        (lambda: SoftLabelEvaluator(SoftLabelOptions(teacher={"path": str(good), "model": "convnet"})).teacher(ctx),
         "does not fit model"),
        (lambda: SoftLabelEvaluator(SoftLabelOptions(teacher={"path": str(garbled)})).teacher(ctx), "not a readable"),
        (lambda: SoftLabelEvaluator(SoftLabelOptions(teacher={"path": str(tmp_path / "no")})).teacher(ctx),
         "teacher.path"),
        (lambda: DWASynthesizer(DWAOptions(ipc=1, teacher=str(garbled))).squeeze(ctx), "not a readable"),
    ]
    for call, message in cases:
        with pytest.raises(UserError, match=message) as err:
            call()
        assert "\n" not in str(err.value), str(err.value)
