"""Recipes: validation before work, one-line errors with exit code 2, --set overrides."""

from __future__ import annotations

from typing import ClassVar

import pytest
from condensery._engine.plugins import get_registry
from condensery._engine.recipe import apply_overrides, load_recipe, resolve
from condensery.api.errors import UserError
from condensery.api.options import Options, validate_options
from pydantic import Field

from .conftest import TINY_DM, write_recipe


def _doc(**changes):
    import yaml

    doc = yaml.safe_load(TINY_DM)
    doc.update(changes)
    return doc


def test_resolve_fills_defaults_and_builds_components():
    plan = resolve(_doc(), get_registry())
    assert plan.synthesizer_name == "pixel" and plan.matcher_name == "distribution"
    assert plan.synthesizer.options.ipc == 1 and plan.synthesizer.options.lr == 1.0
    assert plan.resolved["synthesizer"]["matcher"]["batch_real"] == 16
    assert plan.resolved["runtime"]["mixed_precision"] == "no"
    assert plan.resolved["data"]["val_fraction"] == 0.1


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"synthesizer": {"name": "pixle", "ipc": 1}}, "unknown synthesizer 'pixle' (did you mean 'pixel'?); valid synthesizers: "),
        ({"synthesizer": {"name": "pixel", "ipc": 1, "lrr": 2, "matcher": {"name": "distribution"}}}, "synthesizer 'pixel' has no option 'lrr' (did you mean 'lr'?); valid options: init, init_from, ipc, iterations"),
        ({"synthesizer": {"name": "pixel", "ipc": 0, "matcher": {"name": "distribution"}}}, "synthesizer 'pixel': option 'ipc': Input should be greater than or equal to 1 (got 0)"),
        ({"synthesizer": {"name": "pixel", "ipc": 1, "lr": "fast", "matcher": {"name": "distribution"}}}, "option 'lr': Input should be a valid number"),
        ({"synthesizer": {"name": "pixel", "ipc": 1}}, "synthesizer 'pixel' needs a 'matcher' section"),
        ({"synthesizer": {"name": "pixel", "matcher": {"name": "gradientt"}}}, "unknown matcher 'gradientt'"),
        ({"data": {"name": "digitz"}}, "unknown dataset 'digitz' (did you mean 'digits'?)"),
        ({"model": {"name": "no-such-net"}}, "unknown model 'no-such-net'"),
        ({"evaluators": [{"name": "hard-label", "epoch": 3}]}, "evaluators[0] 'hard-label' has no option 'epoch' (did you mean 'epochs'?)"),
        ({"runtime": {"mixed_precision": "fp8"}}, "runtime: option 'mixed_precision'"),
        ({"synthesizr": {}}, "unknown recipe section 'synthesizr' (did you mean 'synthesizer'?)"),
        ({"seed": "zero"}, "recipe 'seed' must be an integer"),
    ],
)
def test_bad_recipes_fail_with_one_clear_line(change, expected):
    with pytest.raises(UserError) as exc:
        resolve(_doc(**change), get_registry())
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_yaml_no_means_full_precision():
    plan = resolve(_doc(runtime={"mixed_precision": False}), get_registry())
    assert plan.runtime.mixed_precision == "no"


def test_overrides_set_nested_and_list_values():
    doc = apply_overrides(_doc(), ["synthesizer.ipc=10", "evaluators.0.runs=5", "synthesizer.matcher.batch_real=32",
                                   "runtime.mixed_precision=bf16", "data.val_fraction=0.2"])
    assert doc["synthesizer"]["ipc"] == 10 and doc["evaluators"][0]["runs"] == 5
    assert doc["synthesizer"]["matcher"]["batch_real"] == 32 and doc["runtime"]["mixed_precision"] == "bf16"
    plan = resolve(doc, get_registry())
    assert plan.synthesizer.options.ipc == 10


class _Inner(Options):
    steps: int = Field(1, ge=0)
    lr: float = 0.1


class _Outer(Options):
    renamed: ClassVar[dict[str, str]] = {"inner_steps": "inner.steps"}
    ipc: int = 1
    inner: _Inner = Field(default_factory=_Inner)


@pytest.mark.parametrize("values, expected", [
    ({"inner": {"stepz": 2}}, "x has no option 'inner.stepz' (did you mean 'inner.steps'?); valid options of inner: "
                              "lr, steps"),
    ({"inner_steps": 2}, "x: option 'inner_steps' is now 'inner.steps'"),
    ({"inner": {"steps": -1}}, "x: option 'inner.steps': Input should be greater than or equal to 0 (got -1)"),
])
def test_nested_sections_validate_strictly_and_moved_keys_name_their_new_key(values, expected):
    with pytest.raises(UserError) as exc:
        validate_options(_Outer, values, "x")
    assert str(exc.value) == expected
    assert validate_options(_Outer, {"inner": {"steps": 3}}, "x").inner == _Inner(steps=3)


@pytest.mark.parametrize("override, expected", [
    ("synthesizer.ipc", "must look like KEY=VALUE"),
    ("synthesiser.ipc=3", "unknown section 'synthesiser'"),
    ("evaluators.4.runs=1", "not an index of a list of 1 items"),
])
def test_bad_overrides(override, expected):
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(_doc(), [override])


def test_cli_errors_exit_2_with_one_line_no_traceback(cli, tmp_path):
    cases = {
        "missing.yaml": (str(tmp_path / "missing.yaml"), "does not exist"),
        "bad yaml": (str(write_recipe(tmp_path / "bad.yaml", "name: x\ndata: [unclosed\n")), "is not valid YAML at line"),
        "unknown option": (str(write_recipe(tmp_path / "opt.yaml", TINY_DM.replace("iterations: 20", "iterationz: 20"))), "has no option 'iterationz'"),
    }
    for recipe, expected in cases.values():
        res = cli("run", recipe, "-o", str(tmp_path / "out"))
        assert res.code == 2, res.err
        lines = res.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
        assert "Traceback" not in res.err


def test_cli_usage_error_is_one_line(cli):
    res = cli("run")
    assert res.code == 2
    assert len(res.err.strip().splitlines()) == 1 and "Missing argument" in res.err


def test_bad_set_value_on_cli(cli, tiny_recipe, tmp_path):
    res = cli("run", str(tiny_recipe), "--set", "synthesizer.ipc=-3", "-o", str(tmp_path / "o"))
    assert res.code == 2 and "option 'ipc'" in res.err and len(res.err.strip().splitlines()) == 1


def test_load_recipe_from_file(tiny_recipe):
    plan = load_recipe(tiny_recipe, ["synthesizer.iterations=3"], get_registry())
    assert plan.synthesizer.options.iterations == 3


@pytest.mark.parametrize("model, expected", [
    ({"name": "convnet", "widht": 16}, "model 'convnet' has no option 'widht' (did you mean 'width'?); valid options: "
                                       "activation, depth, norm, pooling, small_stem, width"),
    ({"name": "convnet", "depth": 0}, "model 'convnet': option 'depth': Input should be greater than or equal to 1"),
    ({"name": "convnet_bn", "pooling": "sum"}, "model 'convnet_bn': option 'pooling'"),
    ({"name": "resnet18", "stem_type": "deep"}, "model 'resnet18' has no option 'stem_type'; valid options: "
                                                "drop_path_rate, drop_rate, global_pool, small_stem"),
    ({"name": "resnet18", "small_stem": "yes"}, "model 'resnet18': option 'small_stem'"),
    ({"name": "resnet10t", "drop_rat": 0.1}, "model 'resnet10t' has no option 'drop_rat' (did you mean 'drop_rate'?)"),
    ({"name": "vgg11_dd", "width": 8}, "model 'vgg11_dd' has no option 'width'"),
    ({"name": "mlp", "activation": "swish"}, "model 'mlp': option 'activation'"),
    ({"name": "convnett", "width": 8}, "unknown model 'convnett' (did you mean 'convnet'?)"),  # the name first
])
def test_model_options_are_validated_when_the_recipe_resolves(model, expected):
    with pytest.raises(UserError) as exc:
        resolve(_doc(model=model), get_registry())
    assert expected in str(exc.value) and "\n" not in str(exc.value)


def test_the_resolved_model_keeps_the_keys_given_coerced():
    """Defaults are not written into the model spec: a set's stored task and cache keys stay as they were."""
    plan = resolve(_doc(model={"name": "convnet", "width": 16.0, "norm": "batchnorm"}), get_registry())
    assert plan.model == {"name": "convnet", "width": 16, "norm": "batchnorm"} == plan.resolved["model"]
    assert type(plan.model["width"]) is int
    plan = resolve(_doc(model={"name": "resnet10t", "small_stem": False, "drop_rate": 0.1}), get_registry())
    assert plan.model == {"name": "resnet10t", "small_stem": False, "drop_rate": 0.1}
    assert resolve(_doc(model=None), get_registry()).model == {"name": "convnet"}


def test_a_model_factory_without_options_takes_its_keys_unchecked():
    import types

    from condensery import hookimpl
    from condensery._engine.plugins import build_registry

    def factory(num_classes, in_chans, img_size, **options):
        raise AssertionError("not built while resolving")

    plugin = types.ModuleType("free_model")
    plugin.register_models = hookimpl(lambda register: register("free-net", factory))
    reg = build_registry([("free", plugin)])
    plan = resolve(_doc(model={"name": "free-net", "anything": [1, 2]}), reg)
    assert plan.model == {"name": "free-net", "anything": [1, 2]}


@pytest.mark.parametrize("change, expected", [
    ({"synthesizer": {"name": "pixel", "matcher": {"name": "distribution", "model": "convnett"}}},
     "synthesizer.matcher 'distribution': option 'model': Value error, unknown model 'convnett' (did you mean 'convnet'?)"),
    ({"synthesizer": {"name": "dwa", "teacher_model": {"name": "convnet_bn", "widht": 32}}},
     "synthesizer 'dwa': option 'teacher_model': Value error, model 'convnet_bn' has no option 'widht' (did you mean 'width'?)"),
    ({"synthesizer": {"name": "herding", "feature_model": "vgg11dd"}}, "option 'feature_model'"),
    ({"evaluators": [{"name": "soft-label", "teacher": {"model": "convnet_bn", "model_options": {"depht": 2}}}]},
     "teacher model 'convnet_bn' has no option 'depht' (did you mean 'depth'?)"),
])
def test_model_names_and_specs_inside_options_are_validated_too(change, expected):
    with pytest.raises(UserError) as exc:
        resolve(_doc(**change), get_registry())
    assert expected in str(exc.value) and "\n" not in str(exc.value)
