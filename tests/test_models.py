"""Models: DD ConvNets in timm's registry, any timm model with a small-image stem."""

from __future__ import annotations

import condensery.models.convnet  # noqa: F401  (registers the ConvNets into timm)
import pytest
import timm
import torch
from condensery._engine.plugins import get_registry
from condensery.api.context import Task
from condensery.api.errors import UserError


def test_convnet_is_in_timms_registry():
    assert timm.is_model("convnet") and timm.is_model("convnet_d4")
    m = timm.create_model("convnet", num_classes=7, in_chans=3, img_size=32)
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    assert m.num_features == 128 * 4 * 4
    assert isinstance(m.features[1], torch.nn.GroupNorm) and m.features[1].num_groups == 128


@pytest.mark.parametrize("norm, cls", [("batchnorm", torch.nn.BatchNorm2d), ("none", torch.nn.Identity), ("layernorm", torch.nn.GroupNorm)])
def test_convnet_norms(norm, cls):
    m = timm.create_model("convnet", num_classes=10, in_chans=1, img_size=8, width=16, norm=norm)
    assert isinstance(m.features[1], cls)
    assert m(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_convnet_28px_pads_first_conv_like_the_papers():
    m = timm.create_model("convnet", num_classes=10, in_chans=1, img_size=28, width=8)
    assert m.features[0].padding == (3, 3) and m.num_features == 8 * 4 * 4
    assert m(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_convnet_depth_and_pooling():
    m = timm.create_model("convnet_d4", num_classes=5, in_chans=3, img_size=64, width=8, pooling="maxpooling")
    assert sum(isinstance(x, torch.nn.MaxPool2d) for x in m.features) == 4 and m.num_features == 8 * 4 * 4
    feats = m.forward_head(m.forward_features(torch.zeros(2, 3, 64, 64)), pre_logits=True)
    assert feats.shape == (2, 128)


def test_pretrained_convnet_is_refused():
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("convnet", pretrained=True)


def _task(shape=(3, 32, 32), k=10):
    return Task("x", k, [str(i) for i in range(k)], shape, [0.0] * shape[0], [1.0] * shape[0], {"name": "convnet"})


def test_timm_resnet18_gets_a_small_image_stem():
    m = get_registry().build_model({"name": "resnet18"}, _task())
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert isinstance(m.maxpool, torch.nn.Identity)
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_any_timm_name_and_bad_options():
    m = get_registry().build_model({"name": "resnet10t"}, _task(k=4))
    assert m.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(UserError, match="rejected its options .*widht"):
        get_registry().build_model({"name": "convnet", "widht": 3}, _task())
    with pytest.raises(UserError, match="unknown model"):
        get_registry().build_model({"name": "not-a-model"}, _task())
