"""Runtime: Accelerate, precision, seeded named streams."""

from __future__ import annotations

import torch
from condensery import Runtime, make_generator
from condensery.api.runtime_options import RuntimeOptions


def test_named_streams_are_reproducible_and_independent():
    a = torch.rand(3, generator=make_generator(0, "x", 1))
    b = torch.rand(3, generator=make_generator(0, "x", 1))
    c = torch.rand(3, generator=make_generator(0, "x", 2))
    d = torch.rand(3, generator=make_generator(1, "x", 1))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, d)


def test_bf16_autocast_on_cpu():
    rt = Runtime(RuntimeOptions(mixed_precision="bf16", cpu=True), seed=0)
    assert rt.device.type == "cpu" and rt.num_processes == 1 and rt.is_main
    lin = torch.nn.Linear(4, 4)
    with rt.autocast():
        out = lin(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16


def test_full_precision_by_default():
    rt = Runtime(RuntimeOptions(cpu=True), seed=0)
    with rt.autocast():
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.float32
