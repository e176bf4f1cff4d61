"""timm conventions: DD ConvNets through timm's builder, small-image stems per family, vgg11 is timm's."""

from __future__ import annotations

import condensery.models.convnet  # noqa: F401  (registers the ConvNets into timm)
import pytest
import timm
import torch
import torch.nn as nn
from condensery._engine.plugins import get_registry
from condensery.api.context import Task
from condensery.api.errors import UserError
from condensery.models.convnet import ConvNet
from condensery.models.factory import SMALL_STEMS, model_family


def _task(shape=(3, 32, 32), k=10) -> Task:
    return Task("x", k, [str(i) for i in range(k)], shape, [0.0] * shape[0], [1.0] * shape[0], {"name": "convnet"})


def _first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


# -- DD ConvNets through timm's builder ------------------------------------------------------
def test_convnet_has_a_default_pretrained_cfg():
    m = timm.create_model("convnet")
    cfg = m.pretrained_cfg
    assert cfg is not None and cfg["architecture"] == "convnet" and not cfg["url"]
    assert cfg["num_classes"] == 10 and tuple(cfg["input_size"]) == (3, 32, 32)
    assert tuple(cfg["mean"]) == (0.4914, 0.4822, 0.4465) and tuple(cfg["std"]) == (0.2470, 0.2435, 0.2616)
    assert cfg["first_conv"] == "features.0" and cfg["classifier"] == "head"
    assert timm.create_model("convnet_d4").pretrained_cfg["input_size"] == (3, 64, 64)
    assert timm.data.resolve_data_config({}, model=m)["mean"] == (0.4914, 0.4822, 0.4465)


def test_convnet_through_timm_is_the_same_network_as_built_directly():
    torch.manual_seed(0)
    via_timm = timm.create_model("convnet", num_classes=10, in_chans=1, img_size=28, width=16)
    torch.manual_seed(0)
    direct = ConvNet(num_classes=10, in_chans=1, img_size=28, width=16)
    a, b = via_timm.state_dict(), direct.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_convnet_features_only_gives_one_map_per_block():
    f = timm.create_model("convnet", features_only=True, width=16)
    assert type(f).__name__ == "FeatureListNet"
    maps = f(torch.zeros(2, 3, 32, 32))
    assert [tuple(x.shape) for x in maps] == [(2, 16, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4)]
    assert f.feature_info.channels() == [16, 16, 16] and f.feature_info.reduction() == [2, 4, 8]
    g = timm.create_model("convnet_d4", features_only=True, width=8, img_size=64, out_indices=(3,))
    assert [tuple(x.shape) for x in g(torch.zeros(1, 3, 64, 64))] == [(1, 8, 4, 4)]


# -- small-image stems per family ------------------------------------------------------------
@pytest.mark.parametrize("name, family, imagenet_stride", [
    ("resnet18", "resnet", 2), ("efficientnet_b0", "efficientnet", 2),
    ("mobilenetv3_small_100", "mobilenetv3", 2), ("convnext_atto", "convnext", 4),
])
def test_small_stem_per_family_at_32px(name, family, imagenet_stride):
    assert model_family(name) == (family, True) and family in SMALL_STEMS
    torch.manual_seed(0)
    m = get_registry().build_model({"name": name}, _task())
    assert _first_conv(m).stride == (1, 1)
    assert m.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    kept = get_registry().build_model({"name": name, "small_stem": False}, _task())
    assert _first_conv(kept).stride == (imagenet_stride, imagenet_stride)  # false keeps timm's network


def test_what_each_family_rule_changes():
    resnet = get_registry().build_model({"name": "resnet18"}, _task())
    assert resnet.conv1.kernel_size == (3, 3) and isinstance(resnet.maxpool, nn.Identity)
    convnext = get_registry().build_model({"name": "convnext_atto"}, _task())
    assert convnext.stem[0].kernel_size == (3, 3) and convnext.stem[0].padding == (1, 1)
    assert convnext.forward_features(torch.zeros(1, 3, 32, 32)).shape[-2:] == (4, 4)
    deep = get_registry().build_model({"name": "resnet10t"}, _task(shape=(1, 8, 8)))
    assert deep.conv1[0].stride == (1, 1) and deep(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_family_without_a_rule_is_refused_in_one_line():
    with pytest.raises(UserError) as err:
        get_registry().build_model({"name": "regnetx_002"}, _task())
    message = str(err.value)
    assert "\n" not in message and "regnetx_002" in message and "small_stem: false" in message
    kept = get_registry().build_model({"name": "regnetx_002", "small_stem": False}, _task())
    assert kept.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(UserError, match="small_stem is 'yes'"):
        get_registry().build_model({"name": "resnet18", "small_stem": "yes"}, _task())


def test_above_64px_auto_keeps_the_imagenet_stem_and_true_adapts():
    assert _first_conv(get_registry().build_model({"name": "mobilenetv3_small_100"}, _task((3, 96, 96)))).stride == (2, 2)
    forced = get_registry().build_model({"name": "mobilenetv3_small_100", "small_stem": True}, _task((3, 96, 96)))
    assert _first_conv(forced).stride == (1, 1)


# -- names: vgg11 is timm's, vgg11_dd is condensery's -----------------------------------------
def test_vgg11_is_timms_and_vgg11_dd_is_condenserys():
    models = get_registry().names("model")
    assert "vgg11_dd" in models and "vgg11" not in models
    dd = get_registry().build_model({"name": "vgg11_dd"}, _task((1, 8, 8)))
    assert dd(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert sum(p.numel() for p in dd.parameters()) < 10_000_000  # no 4096-wide 7x7 head
    assert model_family("vgg11") == ("vgg", True)
    with pytest.raises(UserError, match="'vgg11' is timm's ImageNet-style 'vgg' family.*vgg11_dd"):
        get_registry().build_model({"name": "vgg11"}, _task())
