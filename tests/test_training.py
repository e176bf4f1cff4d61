"""``train_classifier``, the one training loop: its optimizers, schedules, batch-loss callback and hooks.

The soft-label student (``condensery_eval.student``) and the analysis' real-data run train
through it too, so what they rely on is pinned here: the generator is drawn in the order
randperm, augment, batch loss; a ``batch_loss`` sees the augmented batch and its indices;
``on_step`` counts optimizer steps over all epochs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import DivergenceError, train_classifier
from condensery.training import _schedule, squared_error
from condensery_eval.options import SoftLabelOptions
from condensery_eval.student import kd_loss, mix_batch, student_loss

from .conftest import tiny_classifier, tiny_tensors


def _noise(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return x + 0.1 * torch.randn(x.shape, generator=gen)


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_batch_loss_sees_the_augmented_batch_and_its_indices():
    x, y = tiny_tensors()
    seen = []

    def ce(model, xb, idx, gen):
        seen.append((xb.clone(), idx.clone()))
        return F.cross_entropy(model(xb), y[idx])

    common = dict(epochs=3, lr=0.1, batch_size=16, augment=_noise)
    with_labels = train_classifier(tiny_classifier(), x, y, generator=torch.Generator().manual_seed(1), **common)
    with_loss = train_classifier(tiny_classifier(), x, None, generator=torch.Generator().manual_seed(1), batch_loss=ce, **common)
    assert _same(with_labels, with_loss)
    replay = torch.Generator().manual_seed(1)  # randperm per epoch, then augment per batch
    for epoch in range(3):
        perm = torch.randperm(40, generator=replay)
        for b, start in enumerate(range(0, 40, 16)):
            xb, idx = seen[epoch * 3 + b]
            assert torch.equal(idx, perm[start : start + 16])
            assert torch.equal(xb, _noise(x[idx], replay))


def test_adamw_at_a_constant_lr_is_the_hand_written_loop():
    x, y = tiny_tensors()
    trained = train_classifier(tiny_classifier(), x, y, epochs=2, lr=0.01, batch_size=16, optimizer="adamw",
                               weight_decay=0.01, lr_schedule="none", generator=torch.Generator().manual_seed(3))
    model, gen = tiny_classifier(), torch.Generator().manual_seed(3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    for _ in range(2):
        perm = torch.randperm(40, generator=gen)
        for start in range(0, 40, 16):
            idx = perm[start : start + 16]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    assert _same(trained, model)


@pytest.mark.parametrize("schedule,last_lr", [("step", 0.01), ("cosine", 0.0), ("none", 0.1)])
def test_lr_schedules_end_where_they_should(schedule, last_lr):
    opt = torch.optim.SGD(tiny_classifier().parameters(), lr=0.1)
    sched = _schedule(opt, schedule, 4)
    for _ in range(4):
        opt.step()
        if sched is not None:
            sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(last_lr, abs=1e-12)


def test_hooks_see_every_step_and_epoch_and_progress_wraps_the_epochs():
    x, y = tiny_tensors()
    events = []

    def bar(epochs: range):
        events.append(("bar", len(epochs), None))
        return iter(epochs)

    train_classifier(tiny_classifier(), x, y, epochs=2, lr=0.1, batch_size=16, generator=torch.Generator().manual_seed(0),
                     on_step=lambda step, m: events.append(("step", step, m[1].weight.detach().clone())),
                     on_epoch=lambda epoch, m: events.append(("epoch", epoch, None)),
                     progress=bar)
    assert [e[:2] for e in events] == [("bar", 2), ("step", 1), ("step", 2), ("step", 3), ("epoch", 0),
                                       ("step", 4), ("step", 5), ("step", 6), ("epoch", 1)]
    weights = [w for kind, _, w in events if kind == "step"]
    assert all(not torch.equal(a, b) for a, b in zip(weights, weights[1:]))  # taken after each step


@pytest.mark.parametrize("kw,message", [
    ({"labels": None}, "exactly one"),
    ({"batch_loss": lambda *a: torch.tensor(0.0)}, "exactly one"),
    ({"optimizer": "adam"}, "sgd or adamw"),
    ({"lr_schedule": "constant"}, "step, cosine or none"),
    ({"label_loss": "mse"}, "regression targets"),
])
def test_bad_arguments_are_named(kw, message):
    x, y = tiny_tensors()
    kw = {"labels": y, **kw}
    with pytest.raises(ValueError, match=message):
        train_classifier(tiny_classifier(), x, kw.pop("labels"), epochs=1, lr=0.1, generator=torch.Generator(), **kw)


def test_a_non_finite_batch_loss_is_a_divergence():
    x, _ = tiny_tensors()
    with pytest.raises(DivergenceError, match="at epoch 0"):
        train_classifier(tiny_classifier(), x, None, epochs=1, lr=0.1, generator=torch.Generator(),
                         batch_loss=lambda model, xb, idx, gen: model(xb).sum() * float("nan"))


def test_the_student_loss_mixes_first_then_scores_against_the_mixed_targets():
    from contextlib import nullcontext

    x, _ = tiny_tensors(8)
    model = tiny_classifier()
    idx = torch.tensor([3, 1, 4, 0, 5, 2, 7, 6])
    probs = torch.softmax(torch.randn(8, 3, generator=torch.Generator().manual_seed(5)), 1)
    for mix, label_loss in (("cutmix", "kd"), ("mixup", "mse"), ("none", "kd")):
        p = SoftLabelOptions(mix=mix, temperature=3.0)
        loss = student_loss(p, nullcontext, stored=probs, label_loss=label_loss)(
            model, x[:8], idx, torch.Generator().manual_seed(9))
        mixed, partner, lam = mix_batch(x[:8], mix, p.mix_alpha, torch.Generator().manual_seed(9))
        target = lam * probs[idx] + (1 - lam) * probs[idx][partner]
        out = model(mixed)
        want = squared_error(out, target) if label_loss == "mse" else kd_loss(out, target.clamp_min(1e-8).log(), 3.0)
        assert torch.equal(loss, want)
    with pytest.raises(ValueError, match="stored regression targets"):
        student_loss(SoftLabelOptions(), nullcontext, label_loss="mse")
