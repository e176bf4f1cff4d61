"""Speed-up and peak memory of mixed precision (fp16 / bf16) over fp32, per distillation step.

For DM, MTT and DWA at CIFAR-10 IPC 10 and 50, each from its recipe in recipes/cifar10/
(the method's real code path: the pixel synthesizer with the distribution or trajectory
matcher, the DWA synthesizer), with only the budget cut so a configuration takes seconds
to minutes: a few iterations, one short expert for MTT, a one-epoch teacher for DWA. Those
cuts change what is learned, not what one step costs.

A step's time is read between the method's own progress logs (``ctx.log``, every step
here), so setup (data, experts, teacher) and the first, warm-up step are not timed.
Peak memory is over the same steps: ``torch.cuda.max_memory_allocated`` on a GPU; on a CPU
the growth of the resident set size over its value when the timed stage began (sampled
every 5 ms), next to the process's lifetime peak RSS. Every configuration runs in its own
process. A method whose component is not registered (its plugin is not installed), or
whose recipe is missing, is skipped with a note. fp16 needs a GPU and is skipped on a CPU.

    python tools/bench_precision.py                                 # GPU: fp32, fp16, bf16
    python tools/bench_precision.py --methods dm --ipcs 10 --iterations 4 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# method -> (recipe pattern, component that must be registered, stage timed, budget cuts)
METHODS: dict[str, dict] = {
    "dm": {
        "recipe": "recipes/cifar10/dm-ipc{ipc}.yaml", "component": ("matcher", "distribution"),
        "stage": "synthesize", "set": ["synthesizer.log_every=1"],
    },
    "mtt": {
        "recipe": "recipes/cifar10/mtt-ipc{ipc}.yaml", "component": ("matcher", "trajectory"),
        "stage": "synthesize",
        # one 3-epoch expert; the unroll (syn_steps, expert_epochs) keeps the recipe's length
        "set": ["synthesizer.log_every=1", "synthesizer.matcher.num_experts=1",
                "synthesizer.matcher.train_epochs=3", "synthesizer.matcher.max_start_epoch=1",
                "synthesizer.matcher.experts_dir={work}/experts"],
    },
    "dwa": {
        "recipe": "recipes/cifar10/dwa-ipc{ipc}.yaml", "component": ("synthesizer", "dwa"),
        "stage": "recover", "set": ["synthesizer.log_every=1", "synthesizer.teacher_epochs=1"],
    },
}


def registered(kind: str, name: str) -> bool:
    from condensery import get_registry

    return name in get_registry().components[kind]


def run_one(method: str, ipc: int, precision: str, iterations: int, device: str, data_root: str,
            work: Path, extra: list[str]) -> dict:
    """Time one configuration in this process; return its JSON row."""
    import torch
    from condensery import RunContext, context_of, get_registry, load_plan

    spec = METHODS[method]
    overrides = [s.format(work=work) for s in spec["set"]] + [
        f"synthesizer.iterations={iterations}", f"runtime.mixed_precision={precision}",
        f"runtime.cpu={'true' if device == 'cpu' else 'false'}", "runtime.checkpoint_every=1000000000",
        "data.name=imagefolder", f"data.root={data_root}", *extra,
    ]
    registry = get_registry()
    plan = load_plan(REPO / spec["recipe"].format(ipc=ipc), registry, overrides=overrides, needs_synthesizer=True)
    run_dir = work / "run"
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # never resume another config

    class TimedContext(RunContext):
        def log(self, stage: str, step: int, **metrics: float) -> None:
            timer.mark(stage, step)  # made just below, once the device is known; before any step
            super().log(stage, step, **metrics)

    ctx = context_of(plan, registry, run_dir=run_dir, announce=False, context_class=TimedContext)
    runtime = ctx.runtime
    timer = StepTimer(spec["stage"], runtime.device.type == "cuda")
    if plan.matcher is not None:
        plan.matcher.prepare(ctx)
    plan.synthesizer.synthesize(ctx)
    row = {"method": method, "ipc": ipc, "mixed_precision": precision, "device": str(runtime.device),
           "iterations": iterations, "threads": torch.get_num_threads(), **timer.result()}
    row["lifetime_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return row


class StepTimer:
    """Seconds per step of one stage from its logs; peak memory over the same span."""

    def __init__(self, stage: str, cuda: bool) -> None:
        self.stage, self.cuda = stage, cuda
        self.last: tuple[int, float] | None = None
        self.seconds = 0.0
        self.steps = 0
        self.rss0 = 0
        self.rss_peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def mark(self, stage: str, step: int) -> None:
        if stage != self.stage:
            return
        import torch

        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        if self.last is None:  # the first logged step is the warm-up: measuring starts after it
            self._start_memory()
        elif step > self.last[0]:  # a new batch (DWA) restarts the count: that gap is not a step
            self.seconds += now - self.last[1]
            self.steps += step - self.last[0]
        self.last = (step, now)

    def _start_memory(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        import psutil

        proc = psutil.Process()
        self.rss0 = self.rss_peak = proc.memory_info().rss

        def sample() -> None:
            while not self._stop.wait(0.005):
                self.rss_peak = max(self.rss_peak, proc.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def result(self) -> dict:
        import torch

        if self.steps == 0:
            return {"error": f"stage '{self.stage}' logged fewer than two steps; raise --iterations"}
        out = {"timed_steps": self.steps, "seconds_per_step": round(self.seconds / self.steps, 5)}
        if self.cuda:
            out["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            out["memory_kind"] = "cuda max_memory_allocated over the timed steps"
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            out["peak_memory_mb"] = round((self.rss_peak - self.rss0) / 2**20, 1)
            out["memory_kind"] = "peak RSS growth over the timed steps (5 ms sampling)"
        return out


def with_ratios(rows: list[dict]) -> list[dict]:
    """Add speed-up and memory ratio of each mixed-precision row over its fp32 row."""
    base = {(r["method"], r["ipc"]): r for r in rows if r.get("mixed_precision") == "no" and "seconds_per_step" in r}
    for r in rows:
        b = base.get((r["method"], r["ipc"]))
        if b is None or r.get("mixed_precision") == "no" or "seconds_per_step" not in r:
            continue
        r["speedup_over_fp32"] = round(b["seconds_per_step"] / r["seconds_per_step"], 3)
        if b.get("peak_memory_mb"):
            r["memory_vs_fp32"] = round(r["peak_memory_mb"] / b["peak_memory_mb"], 3)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="dm,mtt,dwa")
    ap.add_argument("--ipcs", default="10,50")
    ap.add_argument("--precisions", default=None, help="default: no,fp16,bf16 on a GPU; no,bf16 on a CPU")
    ap.add_argument("--iterations", type=int, default=12, help="steps per configuration (the first is warm-up)")
    ap.add_argument("--device", choices=("auto", "cpu"), default="auto")
    ap.add_argument("--data-root", default="/root/data/cifar10", help="CIFAR-10 as an ImageFolder (train/, test/)")
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="extra recipe override for every configuration")
    ap.add_argument("-o", "--output", default=None, help="also write the JSON list here")
    ap.add_argument("--one", nargs=4, metavar=("METHOD", "IPC", "PRECISION", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        method, ipc, precision, work = args.one
        row = run_one(method, int(ipc), precision, args.iterations, args.device, args.data_root, Path(work), args.extra)
        print(json.dumps(row))
        return

    import torch

    gpu = torch.cuda.is_available() and args.device != "cpu"
    precisions = args.precisions.split(",") if args.precisions else (["no", "fp16", "bf16"] if gpu else ["no", "bf16"])
    rows: list[dict] = []
    notes: list[str] = []
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; use {', '.join(METHODS)}")
    for method in methods:
        kind, name = METHODS[method]["component"]
        if not registered(kind, name):
            notes.append(f"{method}: skipped, {kind} '{name}' is not registered (its plugin is not installed)")
            continue
        work = Path(tempfile.mkdtemp(prefix=f"bench-precision-{method}-"))  # experts / teacher shared by configs
        try:
            for ipc in (int(i) for i in args.ipcs.split(",")):
                if not (REPO / METHODS[method]["recipe"].format(ipc=ipc)).is_file():
                    notes.append(f"{method} ipc {ipc}: skipped, no recipe {METHODS[method]['recipe'].format(ipc=ipc)}")
                    continue
                for precision in precisions:
                    if precision == "fp16" and not gpu:
                        notes.append(f"{method} ipc {ipc}: fp16 skipped, it needs a GPU")
                        continue
                    rows.append(run_child(method, ipc, precision, work, args))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report = {"rows": with_ratios(rows), "notes": notes}
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)


def run_child(method: str, ipc: int, precision: str, work: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--one", method, str(ipc), precision, str(work),
           "--iterations", str(args.iterations), "--device", args.device, "--data-root", args.data_root]
    for e in args.extra:
        cmd += ["--set", e]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"method": method, "ipc": ipc, "mixed_precision": precision, "error": tail}


if __name__ == "__main__":
    main()
