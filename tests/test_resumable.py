"""LoopCheckpoint: a loop's tensors, optimizer and matcher state round-trip bit for bit; a
checkpoint of another configuration, or one without a fingerprint, is ignored with a message;
a damaged one is a UserError; the pixel loop resumed in-process ends with the uninterrupted set."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from condensery import LoopCheckpoint, Matcher, Options, RunContext, UserError, loop_fingerprint
from condensery._engine.plugins import get_registry
from condensery.api.checkpoints import CheckpointStore
from condensery.api.context import Task
from condensery.api.data import RealData
from condensery.api.runtime import Runtime, RuntimeOptions
from condensery.data.digits import Digits
from condensery.data.options import DigitsOptions
from condensery.data.realdata import load_raw
from condensery_matching.distribution import DistributionMatcher, DistributionOptions
from condensery_matching.pixel import PixelOptions, PixelSynthesizer

from .conftest import Stop, stop_at

TINY = {"name": "convnet", "depth": 1, "width": 8, "norm": "instancenorm"}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_ctx(tmp_path, matcher: Matcher | None, seed: int = 0, **runtime) -> RunContext:
    """Digits (20 training images per class), a tiny ConvNet, the matcher prepared."""
    data = RealData.from_raw("digits", load_raw("digits", Digits(DigitsOptions(cache=False))), 0.1, True)
    idx = torch.cat([data.class_indices[c][:20] for c in range(data.num_classes)])
    data = RealData("digits", data.train_x[idx], data.train_y[idx], data.val_x, data.val_y,
                    data.test_x, data.test_y, data.class_names, data.mean, data.std)
    task = Task("digits", data.num_classes, data.class_names, data.image_shape, data.mean, data.std, dict(TINY))
    ctx = RunContext(task, data, Runtime(RuntimeOptions(cpu=True, **runtime), seed=seed), get_registry(),
                     tmp_path, {}, matcher)
    if matcher is not None:
        matcher.prepare(ctx)
    return ctx


class NoiseOptions(Options):
    scale: float = 1.0


class Noise(Matcher):
    """A matcher whose state is a random stream: pulls the images toward fresh noise each step."""

    Options: ClassVar[type[Options]] = NoiseOptions

    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        self.gen = ctx.generator("noise")

    def loss(self, images, labels, step):
        return ((images - self.options.scale * torch.randn(images.shape, generator=self.gen)) ** 2).sum()

    def state_dict(self):
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state):
        self.gen.set_state(state["gen"])


def noise(ctx: RunContext) -> Noise:
    m = Noise(NoiseOptions())
    m.prepare(ctx)
    return m


def fresh() -> tuple[torch.Tensor, torch.optim.Optimizer]:
    x = torch.zeros(4, 3, requires_grad=True)
    return x, torch.optim.Adam([x], lr=0.1)


def train(x, opt, matcher, steps: range) -> None:
    for step in steps:
        opt.zero_grad()
        matcher.loss(x, None, step).backward()
        opt.step()


def test_tensors_optimizer_and_matcher_state_round_trip(tmp_path):
    ctx = make_ctx(tmp_path, Noise(NoiseOptions()))
    x, opt = fresh()
    train(x, opt, noise(ctx), range(6))
    reference = x.detach().clone()

    loop = LoopCheckpoint(ctx, "loop", loop_fingerprint(ctx, PixelOptions(), images=x))
    first, opt = fresh()
    matcher = noise(ctx)
    train(first, opt, matcher, range(3))
    loop.save(3, {"images": first}, optimizers=[opt], stateful=[matcher], meta={"stage": 1})

    def resumed(restore_matcher: bool = True) -> torch.Tensor:
        saved = loop.load()
        assert saved is not None and saved.step == 3 and saved.meta == {"stage": 1}
        x, opt = fresh()
        matcher = noise(ctx)  # a fresh stream: only the checkpoint can put it at step 3
        with torch.no_grad():
            x.copy_(saved.tensors["images"])
        saved.restore(optimizers=[opt], stateful=[matcher] if restore_matcher else [])
        train(x, opt, matcher, range(3, 6))
        return x.detach()

    assert torch.equal(resumed(), reference)  # bit for bit
    assert not torch.equal(resumed(restore_matcher=False), reference)  # the matcher's state matters


def test_another_configuration_is_ignored_and_named(tmp_path, capsys):
    ctx = make_ctx(tmp_path, Noise(NoiseOptions()))
    images = torch.zeros(10, 1, 8, 8)
    mine = loop_fingerprint(ctx, PixelOptions(), images=images)
    # speed-only settings change no number: a resumed run may change them
    faster = make_ctx(tmp_path, Noise(NoiseOptions()), checkpoint_every=7, threads=1)
    assert loop_fingerprint(faster, PixelOptions(), images=images) == mine
    LoopCheckpoint(ctx, "loop", mine).save(2, {"images": images})
    capsys.readouterr()
    others = {
        "synthesizer options": loop_fingerprint(ctx, PixelOptions(lr=2.0), images=images),
        "images": loop_fingerprint(ctx, PixelOptions(), images=torch.zeros(20, 1, 8, 8)),
        "matcher": loop_fingerprint(make_ctx(tmp_path, Noise(NoiseOptions(scale=2.0))), PixelOptions(), images=images),
        "seed and precision": loop_fingerprint(make_ctx(tmp_path, Noise(NoiseOptions()), seed=1), PixelOptions(),
                                               images=images),
    }
    for part, other in others.items():
        assert LoopCheckpoint(ctx, "loop", other).load() is None
        err = capsys.readouterr().err
        assert f"ignoring {tmp_path / 'checkpoints' / 'loop.safetensors'}" in err and f"({part} differ)" in err
    assert LoopCheckpoint(ctx, "loop", mine).load().step == 2


def test_a_checkpoint_without_fingerprint_is_ignored(tmp_path, capsys):
    ctx = make_ctx(tmp_path, None)
    # a checkpoint whose meta holds no fingerprint
    CheckpointStore(tmp_path / "checkpoints").save("pixel", {"images": torch.ones(2, 3)}, {"step": 5})
    assert LoopCheckpoint(ctx, "pixel", loop_fingerprint(ctx, PixelOptions())).load() is None
    assert "without a configuration fingerprint" in capsys.readouterr().err


def test_a_damaged_checkpoint_is_a_user_error(tmp_path):
    ctx = make_ctx(tmp_path, None)
    loop = LoopCheckpoint(ctx, "loop", loop_fingerprint(ctx, PixelOptions()))
    loop.save(1, {"images": torch.ones(8, 8)})
    loop.path.write_bytes(loop.path.read_bytes()[:40])
    with pytest.raises(UserError, match="is damaged .*--force"):
        loop.load()


def test_names_the_checkpoint_keeps_for_itself_are_refused(tmp_path):
    ctx = make_ctx(tmp_path, None)
    loop = LoopCheckpoint(ctx, "loop", loop_fingerprint(ctx, PixelOptions()))
    with pytest.raises(ValueError):
        loop.save(1, {"a/b": torch.ones(1)})
    with pytest.raises(ValueError):
        loop.save(1, meta={"step": 3})


# -- the pixel loop ---------------------------------------------------------------------


def pixel_run(ctx: RunContext):
    return PixelSynthesizer(PixelOptions(ipc=1, iterations=6, lr=0.1)).synthesize(ctx)


def dm() -> DistributionMatcher:
    return DistributionMatcher(DistributionOptions(batch_real=4))


def test_the_pixel_loop_resumes_to_the_uninterrupted_set_and_ignores_an_old_checkpoint(tmp_path, monkeypatch, capsys):
    clean = pixel_run(make_ctx(tmp_path / "clean", dm(), checkpoint_every=2))
    matcher = dm()
    ctx = make_ctx(tmp_path / "killed", matcher, checkpoint_every=2)
    stop_at(monkeypatch, matcher, 5)
    with pytest.raises(Stop):
        pixel_run(ctx)
    again = make_ctx(tmp_path / "killed", dm(), checkpoint_every=2)
    capsys.readouterr()
    resumed = pixel_run(again)
    assert f"resuming from {tmp_path / 'killed' / 'checkpoints' / 'pixel.safetensors'} at step 4" in capsys.readouterr().err
    assert [r for r in again.history if r.get("resumed")] == [{"stage": "synthesize", "step": 4, "resumed": 1.0}]
    assert torch.equal(resumed.images, clean.images)

    # the same checkpoint without its fingerprint: ignored, the loop starts over
    store = CheckpointStore(tmp_path / "killed" / "checkpoints")
    store.save("pixel", {"images": resumed.images + 1}, {"step": 4})
    old = make_ctx(tmp_path / "killed", dm(), checkpoint_every=100)
    assert torch.equal(pixel_run(old).images, clean.images)
    assert "without a configuration fingerprint" in capsys.readouterr().err
    assert not [r for r in old.history if r.get("resumed")]
