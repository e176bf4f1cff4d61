"""Splitting a run over processes: shares, gathering, and 2 processes == 1 process.

The end-to-end test runs the quickstart recipe (width, iterations and epochs cut down with
--set) once in this process and once as ``--processes 2`` (two gloo ranks on loopback),
then compares the synthetic sets and metrics and reads each process's share log.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import torch
from condensery import Runtime, SyntheticSet
from condensery._engine.launch import child_env, free_port, launch
from condensery.api.runtime import share_of
from condensery.api.runtime_options import RuntimeOptions

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = str(REPO / "recipes" / "quickstart.yaml")
FAST = [
    "--set", "model.width=16", "--set", "synthesizer.iterations=12",
    "--set", "synthesizer.matcher.batch_real=32", "--set", "evaluators.0.epochs=5", "--set", "evaluators.0.runs=2",
    "--set", "runtime.checkpoint_every=5", "--quiet",
]
# Tolerance of the 1-vs-2-process comparison: only float summation order may differ
# (the gradient of a sum over classes, added across processes). Measured: 0.0 exactly.
IMAGE_ATOL = 1e-4
ACCURACY_ATOL = 0.02


@pytest.mark.parametrize("k,n", [(10, 2), (10, 3), (3, 4), (0, 2), (7, 1)])
def test_shares_are_disjoint_contiguous_and_cover_everything(k, n):
    items = list(range(k))
    shares = [share_of(items, n, i) for i in range(n)]
    assert sum(shares, []) == items  # in order, no gaps, no repeats
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1


def test_single_process_split_and_gather_are_identity():
    rt = Runtime(RuntimeOptions(cpu=True), seed=0, announce=False)
    assert rt.split(range(5), "classes") == [0, 1, 2, 3, 4]
    assert rt.gather(["a", 1]) == ["a", 1]
    t = torch.ones(3)
    assert torch.equal(rt.sum_(t), torch.ones(3))
    assert rt.shares == [{"label": "classes", "items": [0, 1, 2, 3, 4], "of": 5}]


def test_children_get_loopback_distributed_env():
    port = free_port()
    env = child_env(1, 2, port, base={"PATH": "/bin"})
    assert env["MASTER_ADDR"] == "127.0.0.1" and env["MASTER_PORT"] == str(port)
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]) == ("1", "2", "1")
    assert int(env["OMP_NUM_THREADS"]) >= 1


def test_a_failing_rank_stops_the_others_and_sets_the_exit_code():
    # rank 0 fails at once; rank 1 would otherwise wait a minute (as in a collective call)
    script = "import os, sys, time; r = int(os.environ['RANK']); time.sleep(60 * r); sys.exit(3)"
    t0 = time.monotonic()
    code = launch([], 2, program=[sys.executable, "-c", script])
    assert code == 3
    assert time.monotonic() - t0 < 30


def test_fp16_on_cpu_is_a_user_error(cli, tmp_path):
    res = cli("run", QUICKSTART, "-o", str(tmp_path / "r"), *FAST, "--set", "runtime.mixed_precision=fp16")
    assert res.code == 2
    assert "fp16 needs a GPU" in res.err and "bf16" in res.err


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    from condensery._engine.cli import main

    out = tmp_path_factory.mktemp("one") / "run"
    main(["run", QUICKSTART, "-o", str(out), *FAST])
    return out


@pytest.mark.slow
def test_two_processes_give_the_same_set_and_metrics_on_disjoint_shares(cli, tmp_path, one_process):
    two = tmp_path / "two"
    res = cli("run", QUICKSTART, "-o", str(two), *FAST, "--processes", "2")
    assert res.code == 0, res.err

    a = SyntheticSet.load(one_process / "synthetic.safetensors")
    b = SyntheticSet.load(two / "synthetic.safetensors")
    assert torch.equal(a.labels, b.labels)
    assert torch.allclose(a.images, b.images, atol=IMAGE_ATOL, rtol=0)

    ma = json.loads((one_process / "metrics.json").read_text())
    mb = json.loads((two / "metrics.json").read_text())
    assert mb["environment"]["processes"] == 2 and ma["environment"]["processes"] == 1
    assert [(r["set"], r["runs"]) for r in ma["results"]] == [(r["set"], r["runs"]) for r in mb["results"]]
    for ra, rb in zip(ma["results"], mb["results"]):
        assert abs(ra["mean"] - rb["mean"]) <= ACCURACY_ATOL

    # each process logged its share of the classes; the shares are disjoint and complete
    logs = [json.loads((two / "logs" / f"process-{i}.json").read_text()) for i in range(2)]
    assert not (two / "logs" / "process-2.json").exists()
    synth = [next(s["items"] for s in log["shares"] if s["label"] == "synthesize classes") for log in logs]
    assert synth[0] and synth[1] and not set(synth[0]) & set(synth[1])
    assert sorted(synth[0] + synth[1]) == list(range(10))
    for label in {s["label"] for log in logs for s in log["shares"]}:  # evaluation shares too, if any
        parts = [next((s["items"] for s in log["shares"] if s["label"] == label), []) for log in logs]
        flat = [json.dumps(x) for p in parts for x in p]
        assert len(flat) == len(set(flat)), f"{label}: processes overlapped"
    # the evaluation runs are split too, and each process logged which ones it trained
    evaluated = [next(s for s in log["shares"] if s["label"] == "hard-label: synthetic runs") for log in logs]
    assert sorted(evaluated[0]["items"] + evaluated[1]["items"]) == list(range(evaluated[0]["of"]))
    assert evaluated[0]["items"] and evaluated[1]["items"]
    single = json.loads((one_process / "logs" / "process-0.json").read_text())
    assert next(s["items"] for s in single["shares"] if s["label"] == "synthesize classes") == list(range(10))


@pytest.mark.slow
def test_bf16_quick_run_on_cpu(cli, tmp_path, one_process):
    out = tmp_path / "bf16"
    res = cli("run", QUICKSTART, "-o", str(out), *FAST, "--set", "runtime.mixed_precision=bf16")
    assert res.code == 0, res.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["environment"]["mixed_precision"] == "bf16"
    assert all(0.0 <= r["mean"] <= 1.0 for r in metrics["results"])
    bf16 = SyntheticSet.load(out / "synthetic.safetensors").images
    fp32 = SyntheticSet.load(one_process / "synthetic.safetensors").images
    assert torch.isfinite(bf16).all()
    assert not torch.equal(bf16, fp32)  # autocast really ran the embeddings in bf16
    assert (bf16 - fp32).abs().mean() < 0.1 * fp32.abs().mean()  # ...and still matched the same targets


MGDD_META = """
name: mgdd-meta-tiny
seed: 0
data: {name: digits}
model: {name: convnet, depth: 2, width: 8, norm: instancenorm}
synthesizer:
  name: mgdd
  mode: meta-train
  ipc: 2
  architecture:
    resolution: 8
    block_out_channels: [8, 16]
  meta:
    steps: 2
    batch: 2
    inner_steps: 1
    lr: 0.01
    inner_lr: 0.01
    task_ipcs: [1, 2]
  labels:
    krr: false
  matcher: {name: krr, dsa: false, num_models: 1, width: 16, resample_every: 1, batch_real: 8}
evaluators:
- {name: hard-label, runs: 1, epochs: 1}
runtime: {threads: 1}  # the same thread count in every process: the test holds whatever threads pytest runs with
"""


@pytest.mark.slow
def test_mgdd_meta_training_on_two_processes_matches_one(cli, tmp_path):
    # the meta batch's sub-tasks are split over processes and the weight deltas all-reduced:
    # the generator must come out the same as in one process
    from condensery_mgdd.artifact import load_meta_generator as load_generator

    recipe = tmp_path / "meta.yaml"
    recipe.write_text(MGDD_META)
    for name, extra in (("one", []), ("two", ["--processes", "2"])):
        res = cli("run", str(recipe), "-o", str(tmp_path / name), "--quiet", *extra)
        assert res.code == 0, res.err
    a, _ = load_generator(tmp_path / "one" / "generator")
    b, _ = load_generator(tmp_path / "two" / "generator")
    start = a.unet.conv_out.weight.abs().sum()
    assert start > 0  # meta-training moved the zero-initialised output layer
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb, atol=1e-5, rtol=0), k


@pytest.mark.slow
def test_one_two_and_three_processes_give_bit_identical_sets_and_accuracies(cli, tmp_path):
    """With the per-process thread count fixed (``runtime.threads``), the process count changes
    nothing: the same set to the bit and the same accuracy of every evaluation network."""
    threads = torch.get_num_threads()
    fixed = [*FAST, "--set", "runtime.threads=1"]
    outs = []
    try:
        for n in (1, 2, 3):
            out = tmp_path / f"p{n}"
            res = cli("run", QUICKSTART, "-o", str(out), *fixed, *(["--processes", str(n)] if n > 1 else []))
            assert res.code == 0, res.err
            outs.append(out)
    finally:
        torch.set_num_threads(threads)
    sets = [SyntheticSet.load(o / "synthetic.safetensors") for o in outs]
    metrics = [json.loads((o / "metrics.json").read_text()) for o in outs]
    for s, m in zip(sets[1:], metrics[1:]):
        assert torch.equal(s.images, sets[0].images)
        assert [r["values"] for r in m["results"]] == [r["values"] for r in metrics[0]["results"]]
    assert [m["environment"]["processes"] for m in metrics] == [1, 2, 3]
    assert {m["environment"]["threads"] for m in metrics} == {1}
