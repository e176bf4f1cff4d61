"""Mixed precision per run: autocast for bf16/fp16, loss scaling for fp16, no private Accelerate state.

fp16 runs only on a GPU, so the loss-scaling path is checked on the CPU with a real
``torch.amp.GradScaler("cpu")`` (and a spy on it): scaling by a power of two and
unscaling before the step is exact in fp32, so the trained weights must be bit-identical
to the unscaled loop's, while the scaler must have seen every batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
from condensery import Runtime, backward_step, train_classifier
from condensery.api.runtime import loss_scaler
from condensery.api.runtime_options import RuntimeOptions

from .conftest import tiny_classifier, tiny_tensors

REPO = Path(__file__).resolve().parents[1]




class SpyScaler:
    """Wraps a GradScaler and counts the calls a training loop makes."""

    def __init__(self, inner: torch.amp.GradScaler) -> None:
        self.inner, self.calls = inner, {"scale": 0, "step": 0, "update": 0}

    def scale(self, loss):
        self.calls["scale"] += 1
        return self.inner.scale(loss)

    def step(self, opt):
        self.calls["step"] += 1
        return self.inner.step(opt)

    def update(self):
        self.calls["update"] += 1
        return self.inner.update()


@pytest.mark.parametrize("precision,enabled", [("fp16", True), ("bf16", False), ("no", False)])
def test_only_fp16_scales_the_loss(precision, enabled):
    assert loss_scaler(precision, "cpu").is_enabled() is enabled


def test_the_fp16_loop_scales_every_batch_and_trains_the_same_weights():
    x, y = tiny_tensors()
    plain = train_classifier(tiny_classifier(), x, y, epochs=3, lr=0.1, batch_size=16, generator=torch.Generator().manual_seed(1))
    spy = SpyScaler(torch.amp.GradScaler("cpu", init_scale=2.0**12))
    scaled = train_classifier(tiny_classifier(), x, y, epochs=3, lr=0.1, batch_size=16,
                              generator=torch.Generator().manual_seed(1), scaler=spy)
    batches = 3 * 3  # 40 images in batches of 16, 3 epochs
    assert spy.calls == {"scale": batches, "step": batches, "update": batches}
    assert spy.inner.get_scale() == 2.0**12  # no overflow, so the scale never dropped
    for a, b in zip(plain.state_dict().values(), scaled.state_dict().values()):
        assert torch.equal(a, b)


def test_an_overflowing_step_is_skipped_not_applied():
    model = tiny_classifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = tiny_tensors(8)
    loss = nn.functional.cross_entropy(model(x), y) * float("inf")
    backward_step(loss, opt, scaler)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert scaler.get_scale() < 2.0**12  # and the scale backs off, as fp16 training needs


def test_bf16_autocasts_without_a_scaler_and_precision_changes_between_runs():
    x = torch.randn(4, 8)
    layer = nn.Linear(8, 8)
    for precision, dtype in (("no", torch.float32), ("bf16", torch.bfloat16), ("no", torch.float32)):
        rt = Runtime(RuntimeOptions(cpu=True, mixed_precision=precision), seed=0, announce=False)
        with rt.autocast():
            assert layer(x).dtype == dtype
        assert not rt.grad_scaler().is_enabled()


def test_no_private_accelerate_api_is_used():
    sources = [p for root in ("core", "plugins") for p in (REPO / root).rglob("*.py")]
    offending = [str(p) for p in sources if "_reset_state" in p.read_text() or "AcceleratorState" in p.read_text()]
    assert not offending
