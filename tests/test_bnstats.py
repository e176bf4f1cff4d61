"""bnstats matcher: the BN-statistics loss vanishes exactly when batch statistics equal the
running statistics, grows otherwise and weighs variance by var_weight (teacher files: tests/test_teachers.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from condensery import UserError
from condensery_matching.bnstats import BNStatsRecorder, batch_statistics, bn_statistics_loss

torch.set_num_threads(1)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.BatchNorm2d(3), nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 5),
    ).eval()


def _calibrate(net: nn.Module, x: torch.Tensor) -> None:
    """Set every BN layer's running stats to the biased statistics of its input on ``x``, in order."""
    rec = BNStatsRecorder(net)
    for i, layer in enumerate(rec.layers):
        with rec, torch.no_grad():
            net(x)
        mu, var, _, _ = rec.stats[i]
        layer.running_mean.copy_(mu)
        layer.running_var.copy_(var)
    rec.remove()


def _loss(net: nn.Module, x: torch.Tensor, var_weight: float = 1.0) -> float:
    rec = BNStatsRecorder(net)
    with rec, torch.no_grad():
        net(x)
    rec.remove()
    return float(bn_statistics_loss(rec.stats, var_weight=var_weight, first_bn_weight=10.0))


def test_loss_is_zero_for_a_batch_with_the_running_statistics():
    g = torch.Generator().manual_seed(0)
    # a batch constructed to have exactly the first layer's running mean and variance
    bn = nn.BatchNorm2d(3).eval()
    bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    bn.running_var.copy_(torch.tensor([0.25, 4.0, 1.0]))
    z = torch.randn(16, 3, 8, 8, generator=g)
    mu, var = batch_statistics(z)
    z = (z - mu.view(1, 3, 1, 1)) / var.sqrt().view(1, 3, 1, 1)
    x = z * bn.running_var.sqrt().view(1, 3, 1, 1) + bn.running_mean.view(1, 3, 1, 1)
    assert _loss(nn.Sequential(bn), x) < 1e-4
    assert _loss(nn.Sequential(bn), x + 0.3) > 1.0  # mean off by 0.3 per channel, weight m_1 = 10


def test_loss_is_zero_through_a_deep_network_and_positive_for_another_batch():
    net = _net()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 3, 8, 8, generator=g) * 2 + 1
    _calibrate(net, x)
    assert _loss(net, x) < 1e-3
    other = torch.randn(32, 3, 8, 8, generator=g)
    assert _loss(net, other) > 1.0


def test_variance_weight_scales_only_the_variance_term():
    bn = nn.BatchNorm2d(2).eval()  # running mean 0, var 1
    g = torch.Generator().manual_seed(2)
    z = torch.randn(64, 2, 4, 4, generator=g)
    mu, var = batch_statistics(z)
    x = 3 * (z - mu.view(1, 2, 1, 1)) / var.sqrt().view(1, 2, 1, 1)  # mean 0, variance 9
    l1, l5 = _loss(nn.Sequential(bn), x, 1.0), _loss(nn.Sequential(bn), x, 5.0)
    expected = 10 * torch.linalg.vector_norm(torch.full((2,), 8.0)).item()  # m_1 * ||9 - 1||
    assert l1 == pytest.approx(expected, rel=1e-3)
    assert l5 == pytest.approx(5 * expected, rel=1e-3)


def test_no_batchnorm_is_a_user_error():
    with pytest.raises(UserError, match="BatchNorm"):
        bn_statistics_loss([])
