"""DSA and crop-flip: siamese parameters, differentiability, per-group vectorisation."""

from __future__ import annotations

import pytest
import torch
from condensery.api.errors import UserError
from condensery.data import DSA, crop_flip
from condensery.data.augment import DSA_OPS


@pytest.mark.parametrize("op", DSA_OPS)
def test_same_params_give_the_same_transform_to_both_batches(op):
    dsa = DSA([op])
    x = torch.randn(4, 3, 16, 16)
    params = dsa.sample(1, torch.Generator().manual_seed(1))
    a = dsa.apply(x, params)
    b = dsa.apply(x.clone(), params)
    assert torch.equal(a, b)
    assert a.shape == x.shape


@pytest.mark.parametrize("op", ["crop", "scale", "rotate", "color", "flip", "cutout"])
def test_ops_change_images_and_pass_gradients(op):
    dsa = DSA([op])
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    changed = False
    for _ in range(5):
        out = dsa.apply(x, dsa.sample(8, gen), torch.arange(8))
        changed |= not torch.allclose(out, x)
    out.sum().backward()
    assert changed and x.grad is not None and torch.isfinite(x.grad).all()


def test_groups_share_parameters_within_a_class():
    dsa = DSA(["rotate"])
    x = torch.randn(1, 1, 8, 8).repeat(4, 1, 1, 1)
    params = dsa.sample(2, torch.Generator().manual_seed(0))
    out = dsa.apply(x, params, torch.tensor([0, 0, 1, 1]))
    assert torch.equal(out[0], out[1]) and torch.equal(out[2], out[3]) and not torch.equal(out[0], out[2])


def test_crop_flip_is_whole_pixel_shift():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(16, 1, 1, 1)
    out = crop_flip(x, torch.Generator().manual_seed(0), pad=1)
    assert out.shape == x.shape
    # every output value is an input value or padding zero
    assert set(out.unique().tolist()) <= set(range(16))


def test_unknown_op():
    with pytest.raises(UserError, match="unknown DSA op"):
        DSA(["blur"])
