"""Resilience: a SIGKILLed run resumes to the very same set; --force; NaN keeps the checkpoint."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from condensery import SyntheticSet
from condensery.api.checkpoints import CheckpointStore

RECIPE = """
name: resume
seed: 3
data: {name: digits}
model: {name: convnet, width: 16}
synthesizer:
  name: pixel
  ipc: 2
  iterations: 120
  matcher: {name: distribution, batch_real: 16}
evaluators:
  - {name: hard-label, runs: 1, epochs: 2}
runtime: {threads: 1, checkpoint_every: 10}
"""


@pytest.fixture
def recipe(tmp_path) -> Path:
    path = tmp_path / "resume.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)  # the recipe's runtime.threads is process-wide


def checkpoint_step(run_dir: Path) -> int:
    loaded = CheckpointStore(run_dir / "checkpoints").load("pixel")
    assert loaded is not None
    return int(loaded[1]["step"])


@pytest.mark.slow
def kill_at_checkpoint(recipe: Path, out: Path, checkpoint: str) -> Path:
    """Run ``recipe`` into ``out`` in a subprocess and SIGKILL it once ``checkpoint`` exists."""
    proc = subprocess.Popen([sys.executable, "-m", "condensery", "run", str(recipe), "-o", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "checkpoints" / f"{checkpoint}.safetensors"
    deadline = time.monotonic() + 180
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    return ckpt


def test_sigkilled_run_resumes_to_the_same_set(cli, recipe, tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    ckpt = kill_at_checkpoint(recipe, killed, "pixel")
    assert not (killed / "synthetic.safetensors").exists() and not (killed / "metrics.json").exists()
    step = checkpoint_step(killed)
    assert 0 < step < 120

    # the same directory with another recipe is refused, not resumed from
    res = cli("run", str(recipe), "-o", str(killed), "--set", "synthesizer.lr=2.0")
    assert res.code == 2 and "different recipe" in res.err and "synthesizer" in res.err

    res = cli("run", str(recipe), "-o", str(killed))
    assert res.code == 0, res.err
    assert f"resuming from {ckpt} at step {step}" in res.err

    res = cli("run", str(recipe), "-o", str(clean), "--quiet")
    assert res.code == 0, res.err
    resumed = SyntheticSet.load(killed / "synthetic.safetensors")
    uninterrupted = SyntheticSet.load(clean / "synthetic.safetensors")
    assert torch.equal(resumed.labels, uninterrupted.labels)
    assert torch.equal(resumed.images, uninterrupted.images)  # bit-identical, not just close
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (killed, clean))
    assert [r["values"] for r in ma["results"]] == [r["values"] for r in mb["results"]]


def test_finished_run_is_not_recomputed_unless_forced(cli, recipe, tmp_path):
    out = tmp_path / "run"
    short = ("--set", "synthesizer.iterations=3", "--set", "evaluators.0.epochs=1")
    assert cli("run", str(recipe), "-o", str(out), *short).code == 0
    synth = out / "synthetic.safetensors"
    before, stamp = SyntheticSet.load(synth).images, synth.stat().st_mtime_ns

    res = cli("run", str(recipe), "-o", str(out), *short)
    assert res.code == 0 and "already finished" in res.err and "--force" in res.err
    assert synth.stat().st_mtime_ns == stamp
    res = cli("run", str(recipe), "-o", str(out), *short, "--processes", "2")  # no processes started
    assert res.code == 0 and "already finished" in res.err
    assert synth.stat().st_mtime_ns == stamp

    res = cli("run", str(recipe), "-o", str(out), "--force", "--set", "synthesizer.iterations=6",
              "--set", "evaluators.0.epochs=1")
    assert res.code == 0, res.err
    assert synth.stat().st_mtime_ns != stamp and "resuming" not in res.err
    assert not torch.equal(SyntheticSet.load(synth).images, before)  # really recomputed, 6 steps


def test_run_killed_during_evaluation_keeps_its_synthesis_time(cli, recipe, tmp_path):
    out = tmp_path / "run"
    short = ("--set", "synthesizer.iterations=3", "--set", "evaluators.0.epochs=1")
    assert cli("run", str(recipe), "-o", str(out), *short).code == 0
    first = json.loads((out / "metrics.json").read_text())
    assert first["reused"] == [] and first["seconds"]["synthesize"] > 0
    # as if killed after the set was written, before the evaluation finished
    (out / "metrics.json").unlink()
    (out / "checkpoints" / "evaluate.json").unlink(missing_ok=True)
    res = cli("run", str(recipe), "-o", str(out), *short)
    assert res.code == 0 and "reusing the finished set" in res.err
    again = json.loads((out / "metrics.json").read_text())
    assert again["reused"] == ["synthesize"]
    assert again["seconds"]["synthesize"] == first["seconds"]["synthesize"]
    assert SyntheticSet.load(out / "synthetic.safetensors").metadata["seconds_synthesize"] == first["seconds"]["synthesize"]


def test_nan_names_the_step_and_keeps_a_loadable_checkpoint(cli, recipe, tmp_path):
    out = tmp_path / "nan"
    # no normalisation + a huge image lr: activations overflow after the first update
    res = cli("run", str(recipe), "-o", str(out), "--set", "model.norm=none", "--set", "synthesizer.lr=1e30",
              "--set", "runtime.checkpoint_every=1")
    assert res.code == 3, res.err
    m = re.search(r"at step (\d+) of stage 'synthesize'; likely cause: (.*?); last good checkpoint kept at (\S+?)[;\s]",
                  res.err)
    assert m, res.err
    step, kept = int(m.group(1)), Path(m.group(3))
    assert kept == out / "checkpoints" / "pixel.safetensors" or m.group(3) == "(none"
    if kept.is_file():
        tensors, meta = CheckpointStore(kept.parent).load("pixel")
        assert 0 < int(meta["step"]) <= step
        assert tensors["images"].shape == (20, 1, 8, 8) and torch.isfinite(tensors["images"]).all()
        assert float(tensors["images"].abs().max()) <= 1e4  # sane, not just finite
    assert not (out / "synthetic.safetensors").exists() and not (out / "metrics.json").exists()
    assert "Traceback" not in res.err
    # the last sane images are kept as a set, and the suggested command continues from them
    sane = SyntheticSet.load(out / "last-sane.safetensors")
    assert torch.isfinite(sane.images).all() and float(sane.images.abs().max()) <= 1e4
    suggested = re.search(r"continue from the last sane images with: condensery (run .*)$", res.err.strip())
    assert suggested, res.err
    argv = suggested.group(1).split()
    assert "synthesizer.lr=1e+29" in argv and f"synthesizer.init_from={out / 'last-sane.safetensors'}" in argv
    res = cli(*argv, "--set", "synthesizer.lr=0.01", "--set", "synthesizer.iterations=3", "--quiet")
    assert res.code == 0, res.err


def test_checkpoint_write_is_atomic(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("pixel", {"images": torch.ones(2, 3)}, {"step": 10})
    # a write cut off by a kill leaves only a temp file; the last whole checkpoint stays
    (tmp_path / ".pixel.safetensors.999999999.tmp").write_bytes(b"\x00garbage")
    tensors, meta = store.load("pixel")
    assert meta == {"step": 10} and torch.equal(tensors["images"], torch.ones(2, 3))
    store.save("pixel", {"images": torch.zeros(2, 3)}, {"step": 20})
    assert store.load("pixel")[1] == {"step": 20}
    assert not (tmp_path / ".pixel.safetensors.999999999.tmp").exists()


MGDD_META = """
name: resume-mgdd
seed: 0
data: {name: digits, classes: [0, 1, 2, 3, 4]}
model: {name: convnet, depth: 2, width: 16}
synthesizer:
  name: mgdd
  mode: meta-train
  ipc: 2
  architecture:
    resolution: 8
    block_out_channels: [8, 16]
  meta:
    steps: 30
    batch: 2
    inner_steps: 1
    task_ipcs: [1, 2]
  matcher: {name: krr, dsa: false, num_models: 1, width: 32, resample_every: 1, batch_real: 16}
evaluators: [{name: hard-label, runs: 1, epochs: 2}]
runtime: {threads: 1, checkpoint_every: 3}
"""

DWA = """
name: resume-dwa
seed: 0
data: {name: digits}
model: {name: convnet_bn, width: 16}
synthesizer: {name: dwa, ipc: 2, teacher_model: {name: convnet_bn, width: 16}, teacher_epochs: 2, iterations: 40,
              steps: 2, lr: 0.1, shift: 1, init: real, rho: 0.015}
evaluators: [{name: soft-label, runs: 1, epochs: 2}]
runtime: {threads: 1, checkpoint_every: 2}
"""


MGDD_ADAPT = """
name: resume-mgdd-adapt
seed: 0
data: {name: digits, classes: [5, 6, 7, 8, 9]}
model: {name: convnet, depth: 2, width: 16}
synthesizer:
  name: mgdd
  mode: adapt
  generator: GENERATOR
  ipc: 2
  adapt:
    steps: 30
    ipcs: [1, 2]
  matcher: {name: krr, dsa: false, num_models: 1, width: 32, resample_every: 1, batch_real: 16}
evaluators: [{name: hard-label, runs: 1, epochs: 2}]
runtime: {threads: 1, checkpoint_every: 3}
"""


@pytest.mark.slow
@pytest.mark.parametrize("text,checkpoint", [(MGDD_META, "mgdd-meta-train"), (MGDD_ADAPT, "mgdd-adapt"),
                                             (DWA, "dwa-recover-p0")])
def test_mgdd_and_dwa_resume_to_the_same_set(cli, tmp_path, text, checkpoint):
    recipe = tmp_path / "r.yaml"
    if "GENERATOR" in text:  # adaptation needs a meta-trained generator first
        (tmp_path / "meta.yaml").write_text(MGDD_META.replace("    steps: 30", "    steps: 4"))
        assert cli("run", str(tmp_path / "meta.yaml"), "-o", str(tmp_path / "meta"), "--quiet").code == 0
        text = text.replace("GENERATOR", str(tmp_path / "meta" / "generator"))
    recipe.write_text(text)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    kill_at_checkpoint(recipe, killed, checkpoint)
    assert not (killed / "synthetic.safetensors").exists()
    res = cli("run", str(recipe), "-o", str(killed))
    assert res.code == 0, res.err
    assert "resuming" in res.err, res.err
    assert cli("run", str(recipe), "-o", str(clean), "--quiet").code == 0
    a, b = (SyntheticSet.load(d / "synthetic.safetensors") for d in (killed, clean))
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (killed, clean))
    assert [r["values"] for r in ma["results"]] == [r["values"] for r in mb["results"]]
