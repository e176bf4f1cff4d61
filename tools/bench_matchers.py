"""Seconds per distillation step, peak memory and achieved GFLOP/s of every matcher, as JSON.

CIFAR-10 shape (3x32x32, 10 classes, ConvNet-3 width 128) with random tensors standing in
for the data, so no files are needed; IPC 10 and 50; mixed precision off and on (fp16 on a
GPU, bf16 on a CPU). One step is what the pixel synthesizer does per iteration:
``loss`` + ``backward`` + optimiser step + ``after_step`` (so for gradient matching it
includes the inner training of its network). Each configuration runs in its own process,
so peak memory is its own: ``torch.cuda.max_memory_allocated`` on a GPU, the peak resident
set size (``ru_maxrss``) on a CPU. Trajectory matching reads random expert shards written
to a temporary folder (timing does not depend on what the experts learned).
Seconds per step are the median of ``--iterations`` timed steps after one warm-up step
(``step_seconds`` lists them); peak memory is read right after them. Then one more step is
counted with ``torch.utils.flop_counter`` (forward, backward and any inner loop; counting after
the memory reading, as the counter's own bookkeeping added ~100 MB of RSS to DM's step) and
reported as achieved GFLOP/s next to the machine's measured square-matmul throughput at the
same precision (``fraction_of_matmul``: how far a step is from the limit; ``--no-flops`` leaves that
step out, e.g. for a long step timed against another code). ``--profile N``
adds the N operators with the most self time in one further step (``top_ops``), ``--classes``
varies the number of classes (cost against classes; 500 random images per class).
``--compile`` times every configuration eager and with ``runtime.compile: yes`` (in separate
processes, eager first), rows marked ``compile``; a compiled row adds ``compile_seconds`` (what
its warm-up steps took beyond its median step: the first compile), ``recompiles`` (graphs
compiled during the timed steps: 0 when fresh networks reuse the graph), ``compile_failed`` (the
networks that fell back to eager, with why), and, against the eager
row, ``speedup`` and ``break_even_steps`` (steps it takes the compile to pay for itself).
``--compile-mode reduce-overhead`` asks for CUDA graphs on a GPU. Compiled rows take
``--warmup`` steps before timing (default 2: a first step may compile more than one graph).

    python tools/bench_matchers.py                       # full settings (a GPU is advised)
    python tools/bench_matchers.py --quick --iterations 2  # a small CPU check
    python tools/bench_matchers.py --methods dm --ipcs 10 --precisions no --compile  # eager vs compiled
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("dc", "dsa", "dm", "mtt", "mtt-ckpt", "krr", "dwa")
TRAJ = {1: dict(syn_steps=50, expert_epochs=2, max_start_epoch=2), 10: dict(syn_steps=30, expert_epochs=2, max_start_epoch=20),
        50: dict(syn_steps=30, expert_epochs=2, max_start_epoch=40)}  # the MTT paper's CIFAR-10 settings


def matcher_spec(method: str, ipc: int, quick: bool, experts_dir: str, syn_steps: int | None = None) -> dict:
    """The recipe's matcher section for ``method`` (the papers' CIFAR-10 settings unless ``quick``;
    ``syn_steps`` replaces MTT's unroll length, e.g. for a side-by-side run that must fit in memory twice)."""
    real = 16 if quick else 256
    if method in ("dc", "dsa"):
        spec = {"name": "gradient", "dsa": method == "dsa", "batch_real": real}
        if quick:
            spec["inner_loop"] = 1
        return spec
    if method == "dm":
        return {"name": "distribution", "batch_real": real}
    if method.startswith("mtt"):
        t = dict(TRAJ[ipc])
        if quick:
            t.update(syn_steps=2)
        if syn_steps is not None:
            t.update(syn_steps=syn_steps)
        return {"name": "trajectory", **t, "train_epochs": 50, "num_experts": 2, "experts_dir": experts_dir,
                "checkpoint_unroll": method == "mtt-ckpt", "batch_syn": None if method == "mtt" else 100}
    if method == "dwa":  # DWA / SRe2L recover: BN-statistics matching against a (random) BN teacher
        return {"name": "bnstats"}
    if method == "krr":
        return {"name": "krr", "num_models": 2 if quick else 8, "width": 128 if quick else 1024,
                "batch_real": 16 if quick else 128}
    raise SystemExit(f"unknown method {method}; use {', '.join(METHODS)}")


def run_one(method: str, ipc: int, precision: str, iterations: int, quick: bool, device: str,
            classes: int = 10, profile: int = 0, syn_steps: int | None = None, compile: str = "no",
            compile_mode: str = "default", warmup: int = 1, flops: bool = True) -> dict:
    """Time one configuration in this process and return its JSON row."""
    import torch
    from condensery import RealData, context_of, get_registry, load_plan, require
    from condensery_dwa.capabilities import TeacherMatching
    from condensery_matching.experts import ExpertSpec, data_identity, expert_path, write_expert

    per_class = 60 if quick else 500
    k = classes
    g = torch.Generator().manual_seed(0)
    x = torch.randn(per_class * k, 3, 32, 32, generator=g)
    y = torch.arange(k).repeat_interleave(per_class)
    data = RealData("bench", x, y, x[:0], y[:0], x[:100], y[:100], [str(i) for i in range(k)], [0.0] * 3, [1.0] * 3)
    model = {"name": "convnet", "depth": 3, "width": 32 if quick else 128, "norm": "instancenorm"}
    registry = get_registry()
    tmp = tempfile.mkdtemp(prefix="bench-experts-")
    # the recipe states the model, ipc, matcher and runtime; its data section only names a
    # registered source (nothing is read): the data are the random tensors above
    recipe = {"name": f"bench-{method}", "seed": 0, "data": {"name": "digits"}, "model": model,
              "synthesizer": {"name": "pixel", "ipc": ipc, "matcher": matcher_spec(method, ipc, quick, tmp, syn_steps)},
              "runtime": {"cpu": device == "cpu", "mixed_precision": precision, "compile": compile,
                          "compile_mode": compile_mode}}
    plan = load_plan(recipe, registry, needs_synthesizer=True)
    ctx = context_of(plan, registry, run_dir=Path(tmp), data=data)
    runtime, data, matcher = ctx.runtime, ctx.data, plan.matcher
    if method.startswith("mtt"):  # random expert shards of the right size
        numel = sum(p.numel() for p in ctx.create_model().parameters())
        es = ExpertSpec(50, 0.01, 256, True, data_identity(ctx), dict(model), numel)
        for i in range(2):
            write_expert(expert_path(Path(tmp), i), torch.randn(51, numel, generator=g) * 0.05, es.header(i, 0))
    matcher.prepare(ctx)
    if method == "dwa":  # the recover step's network: a ConvNet-BN teacher (its weights do not change the cost)
        teacher = ctx.create_model("convnet_bn", width=model["width"])
        require(matcher, TeacherMatching, "bench_matchers --method dwa").set_teacher(teacher)
    images = data.train_x[torch.arange(k).repeat_interleave(ipc) * per_class].clone().requires_grad_(True)
    labels = torch.arange(k, device=runtime.device).repeat_interleave(ipc)
    groups = [{"params": [images], "lr": 0.01}] + [{"params": [t], "lr": lr} for t, lr in matcher.parameters()]
    opt = torch.optim.SGD(groups, momentum=0.5)
    cuda = runtime.device.type == "cuda"

    def step(i: int) -> None:
        loss = matcher.loss(images, labels, i)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        matcher.after_step(images, labels, i)

    from torch._dynamo.utils import counters

    warm_times = []
    for i in range(warmup):  # warm-up (allocations, kernels, compiling) is not timed
        t0 = time.perf_counter()
        step(i)
        if cuda:
            torch.cuda.synchronize()
        warm_times.append(time.perf_counter() - t0)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    graphs_before = counters["stats"]["unique_graphs"]
    times = []
    for i in range(warmup, warmup + iterations):
        t0 = time.perf_counter()
        step(i)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    recompiles = counters["stats"]["unique_graphs"] - graphs_before
    runtime.compiler.setting = "no"  # the FLOPs (and the profile) of the same work, counted eagerly
    if cuda:  # peak memory of the warm-up and the timed steps, before the FLOP counter's own step
        peak, memory_kind = torch.cuda.max_memory_allocated() / 2**20, "cuda max_memory_allocated"
    else:
        peak, memory_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
    from torch.utils.flop_counter import FlopCounterMode

    row = {"method": method, "matcher": type(matcher).__name__, "ipc": ipc, "mixed_precision": precision,
           "device": str(runtime.device), "iterations": iterations, "classes": k,
           "seconds_per_step": round(seconds, 4), "step_seconds": [round(s, 4) for s in times],
           "quick": quick, "model_width": model["width"], "threads": torch.get_num_threads(),
           "compile": compile, "warmup_seconds": [round(s, 3) for s in warm_times]}
    if flops:
        with FlopCounterMode(display=False) as counter:  # the FLOPs of one step (forward, backward, inner loops)
            step(warmup + iterations)
        total = counter.get_total_flops()
        row.update(gflop_per_step=round(total / 1e9, 3), achieved_gflops=round(total / 1e9 / seconds, 2))
    if compile != "no":
        row.update(compile_mode=compile_mode, recompiles=recompiles, compile_failed=dict(runtime.compiler.failed),
                   compile_seconds=round(max(0.0, sum(warm_times) - warmup * seconds), 2))
    row["peak_memory_mb"], row["memory_kind"] = round(peak, 1), memory_kind
    if method.startswith("mtt"):
        row["syn_steps"] = recipe["synthesizer"]["matcher"]["syn_steps"]
    if profile:
        row["top_ops"] = top_ops(lambda: step(warmup + iterations + 1), profile, cuda)
    return row


def against_eager(eager: dict, compiled: dict) -> dict:
    """``speedup`` of a compiled row over its eager row and the steps its compile takes to pay for itself."""
    saved = eager["seconds_per_step"] - compiled["seconds_per_step"]
    return {"speedup": round(eager["seconds_per_step"] / compiled["seconds_per_step"], 3),
            "break_even_steps": round(compiled["compile_seconds"] / saved, 1) if saved > 0 else None}


def top_ops(fn, count: int, cuda: bool) -> list[dict]:
    """Where one step's time goes: the ``count`` operators with the most self time (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        fn()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in events) or 1.0
    return [{"op": e.key, "self_s": round(getattr(e, key) / 1e6, 4), "share": round(getattr(e, key) / total, 4),
             "calls": e.count} for e in events[:count]]


def matmul_gflops(precision: str, device: str, repeats: int = 5) -> float:
    """The machine's measured square-matmul throughput at ``precision``: the limit a step aims at."""
    import torch

    n = 8192 if device == "cuda" else 1024  # CPU bf16 without AMX is slow: keep the probe short
    dtype = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.randn(n, n, device=device).to(dtype)
    a @ a
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ a
    if device == "cuda":
        torch.cuda.synchronize()
    return round(repeats * 2 * n**3 / (time.perf_counter() - t0) / 1e9, 1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--ipcs", default="10,50")
    ap.add_argument("--precisions", default=None, help="default: no plus fp16 (GPU) or bf16 (CPU)")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="small settings: ConvNet width 32, real batch 16, 2-step unrolls, narrow KRR nets")
    ap.add_argument("--device", choices=("auto", "cpu"), default="auto")
    ap.add_argument("--classes", default="10", help="comma-separated class counts (cost against the number of classes)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="also list the N operators with the most self time")
    ap.add_argument("--syn-steps", type=int, default=None, help="MTT: unroll this many student steps instead of the paper's")
    ap.add_argument("--compile", action="store_true", help="time each configuration eager and compiled (runtime.compile)")
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode of the compiled rows (reduce-overhead: CUDA graphs)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 1; 2 for compiled rows)")
    ap.add_argument("--no-flops", action="store_true", help="skip the extra step that counts FLOPs (no GFLOP/s in the rows)")
    ap.add_argument("-o", "--output", default=None, help="also write the JSON list here")
    ap.add_argument("--one", nargs=3, metavar=("METHOD", "IPC", "PRECISION"), help=argparse.SUPPRESS)
    ap.add_argument("--compile-setting", default="no", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        method, ipc, precision = args.one
        print(json.dumps(run_one(method, int(ipc), precision, args.iterations, args.quick, args.device,
                                 int(args.classes), args.profile, args.syn_steps, args.compile_setting,
                                 args.compile_mode, args.warmup or (1 if args.compile_setting == "no" else 2),
                                 not args.no_flops)))
        return
    import torch

    gpu = torch.cuda.is_available() and args.device != "cpu"
    precisions = args.precisions.split(",") if args.precisions else ["no", "fp16" if gpu else "bf16"]
    ceiling = {p: matmul_gflops(p, "cuda" if gpu else "cpu") for p in precisions}
    print(json.dumps({"matmul_gflops": ceiling}), file=sys.stderr, flush=True)
    rows = []
    settings = ("no", "yes") if args.compile else ("no",)
    for method in args.methods.split(","):
        for ipc, classes, precision, setting in itertools.product(
                (int(i) for i in args.ipcs.split(",")), (int(c) for c in args.classes.split(",")), precisions,
                settings):
            cmd = [sys.executable, __file__, "--one", method, str(ipc), precision, "--iterations",
                   str(args.iterations), "--device", args.device, "--classes", str(classes),
                   "--profile", str(args.profile), "--compile-setting", setting, "--compile-mode", args.compile_mode]
            if args.warmup is not None:
                cmd += ["--warmup", str(args.warmup)]
            if args.quick:
                cmd.append("--quick")
            if args.syn_steps is not None:
                cmd += ["--syn-steps", str(args.syn_steps)]
            if args.no_flops:
                cmd.append("--no-flops")
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
            if proc.returncode == 0:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                row = {"method": method, "ipc": ipc, "classes": classes, "mixed_precision": precision,
                       "compile": setting, "error": tail}
            if "achieved_gflops" in row and ceiling.get(precision):
                row["matmul_gflops"] = ceiling[precision]
                row["fraction_of_matmul"] = round(row["achieved_gflops"] / ceiling[precision], 4)
            if setting != "no" and rows and "seconds_per_step" in rows[-1] and "seconds_per_step" in row:
                row.update(against_eager(rows[-1], row))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    text = json.dumps(rows, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
