"""The GPU suite: everything a first device call should measure, in one command under 9 minutes.

The device machine has torch, timm, accelerate, pluggy, safetensors, click and tqdm, reaches no
registry, and gets only the working tree plus the git-ignored folders named in ``carry``. So:

    python tools/gpu_suite.py prepare          # here, once: wheels for Python 3.12 -> .whl/, CIFAR-10 -> .data/
    # then one device call:
    #   run(command="python tools/gpu_suite.py run --out $OUT", carry=[".whl", ".data"], timeout_s=560)
    python tools/gpu_suite.py run --dry-run --out /tmp/gpu-dry   # here: every step at toy size on the CPU

``run`` (1) installs the carried wheels of whatever is missing (``--no-index --no-deps``) and
condensery itself (editable, no build isolation); (2) unpacks the CIFAR-10 JPEG tarball;
(3) runs ``tools/bench_matchers.py`` at paper settings (ConvNet-3 width 128, real batch 256,
MTT's 30-step unroll) for DM, DSA, MTT and the DWA recover step at IPC 10 and 50, fp32 against
bf16; (4) times DM and DSA at IPC 10 eager against ``runtime.compile: yes`` (``torch.compile``)
and, for DM, against CUDA graphs (``compile_mode: reduce-overhead``), with each compile's
seconds and the steps it takes to pay for itself (``compile_rows``); (5) distils DM IPC 10 from the paper recipe (``recipes/cifar10/dm-ipc10.yaml``) for as many
of its 20,000 iterations as the remaining time allows (the JSON says how many; the published
figure is 48.9 %) and evaluates it next to random subsets. Every stage has a deadline inside
``--budget-s`` (default 500 s); what does not fit is recorded as skipped, never silently cut.
``$OUT/gpu_suite.json`` holds the environment, each stage's seconds and results.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEELS, DATA = REPO / ".whl", REPO / ".data"
TARBALL = "cifar10-jpeg.tar.gz"
SHARED_TARBALL = REPO.parent / "shared" / "data" / TARBALL
#: what condensery needs beyond the device's torch, timm, accelerate, pluggy, safetensors, click
#: and tqdm (numpy, pillow, pyyaml, requests and huggingface-hub come with torchvision and timm).
#: scikit-learn and matplotlib are left out: digits and pictures only (a picture that cannot be
#: drawn is a warning), and with them the carry would pass its 64 MiB limit.
CARRIED = ("diffusers", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
           "importlib-metadata", "zipp", "regex", "scipy")
PUBLISHED_DM_IPC10 = 0.489
DM_PAPER_ITERATIONS = 20000


def prepare() -> None:
    """Download the wheels (Python 3.12, manylinux x86_64) and copy the tarball into the carried folders."""
    WHEELS.mkdir(exist_ok=True)
    DATA.mkdir(exist_ok=True)
    platforms = [a for p in ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
                 for a in ("--platform", p)]
    for dist in CARRIED:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
               *platforms, "-d", str(WHEELS), dist]
        code = subprocess.run(cmd, capture_output=True, text=True).returncode
        print(f"{dist}: {'ok' if code == 0 else 'FAILED'}", file=sys.stderr)
    if SHARED_TARBALL.is_file():
        shutil.copy2(SHARED_TARBALL, DATA / TARBALL)
    size = sum(p.stat().st_size for p in [*WHEELS.iterdir(), *DATA.iterdir()]) / 2**20
    print(f"carry .whl and .data: {size:.1f} MiB in all (limit 64 MiB)", file=sys.stderr)


def _installed(dist: str) -> bool:
    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def install(dry_run: bool) -> dict:
    """pip-install the carried wheels of distributions missing here, then condensery (editable)."""
    missing = []
    for wheel in sorted(WHEELS.glob("*.whl")) if WHEELS.is_dir() else []:
        dist = wheel.name.split("-")[0].replace("_", "-")
        if not _installed(dist):
            missing.append(wheel)
    report: dict = {"wheels_installed": [w.name for w in missing]}
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "-q"]
    if missing and not dry_run:
        report["wheels_code"] = subprocess.run([*pip, *map(str, missing)]).returncode
    if not dry_run and not _installed("condensery"):
        report["condensery_code"] = subprocess.run([*pip, "--no-build-isolation", "-e", str(REPO)]).returncode
    report["condensery"] = _installed("condensery")
    return report


def unpack(out: Path, dry_run: bool) -> Path | None:
    tarball = DATA / TARBALL
    if dry_run or not tarball.is_file():
        return None
    target = Path(os.environ.get("TMPDIR", "/tmp")) / "condensery-cifar10"
    if not (target / "cifar10" / "train").is_dir():
        with tarfile.open(tarball) as tar:
            tar.extractall(target, filter="data")
    return target / "cifar10"


def bench(out: Path, dry_run: bool, deadline: float) -> dict:
    cmd = [sys.executable, str(REPO / "tools" / "bench_matchers.py"), "--methods", "dm,dsa,mtt,dwa",
           "--precisions", "no,bf16", "-o", str(out / "bench_matchers.json")]
    cmd += (["--quick", "--iterations", "1", "--ipcs", "10", "--device", "cpu"] if dry_run
            else ["--iterations", "5", "--ipcs", "10,50"])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        return {"skipped": "bench_matchers ran past its deadline", "seconds": round(time.perf_counter() - t0, 1)}
    rows = json.loads(proc.stdout) if proc.returncode == 0 else []
    return {"code": proc.returncode, "seconds": round(time.perf_counter() - t0, 1), "rows": rows,
            "stderr_tail": proc.stderr.strip().splitlines()[-3:]}


#: the compiled-vs-eager stage: (methods, torch.compile mode); reduce-overhead is CUDA graphs
COMPILE_STAGES = (("dm,dsa", "default"), ("dm", "reduce-overhead"))


def compile_bench(out: Path, dry_run: bool, deadline: float) -> dict:
    """Eager vs compiled rows (``bench_matchers --compile``) at paper settings, fp32, IPC 10.

    One ``bench_matchers`` call per mode, each within what is left before ``deadline``; a mode
    that does not fit is recorded as skipped. The dry run times the first mode at toy size.
    """
    result: dict = {"rows": [], "modes": {}}
    for methods, mode in COMPILE_STAGES[:1] if dry_run else COMPILE_STAGES:
        left = deadline - time.time()
        if left < 30:
            result["modes"][mode] = {"skipped": f"only {left:.0f} s left"}
            continue
        cmd = [sys.executable, str(REPO / "tools" / "bench_matchers.py"), "--methods", methods, "--precisions", "no",
               "--compile", "--compile-mode", mode, "-o", str(out / f"bench_compile_{mode}.json")]
        cmd += (["--quick", "--iterations", "1", "--ipcs", "1", "--classes", "2", "--device", "cpu"] if dry_run
                else ["--iterations", "5", "--ipcs", "10"])
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            result["modes"][mode] = {"skipped": "ran past its deadline", "seconds": round(time.perf_counter() - t0, 1)}
            continue
        rows = json.loads(proc.stdout) if proc.returncode == 0 else []
        result["rows"] += rows
        result["modes"][mode] = {"code": proc.returncode, "seconds": round(time.perf_counter() - t0, 1),
                                 "stderr_tail": proc.stderr.strip().splitlines()[-3:]}
    return result


def dm_paper(out: Path, root: Path | None, rows: list[dict], dry_run: bool, deadline: float) -> dict:
    """DM IPC 10 from the paper recipe for the iterations that fit before ``deadline``."""
    step = next((r["seconds_per_step"] for r in rows if r.get("method") == "dm" and r.get("ipc") == 10
                 and r.get("mixed_precision") == "no" and "seconds_per_step" in r), None)
    reserve = 90.0  # data decode and two arms x 5 networks x 1,000 epochs of 100 images
    left = deadline - time.time() - reserve
    if dry_run:  # the embedded digits stand in for CIFAR-10, a few steps and epochs
        iterations = 3
        overrides = ["data={name: digits}", "model.width=16", "evaluators.0.epochs=5", "evaluators.0.runs=2"]
    else:
        if root is None or step is None or left <= 0:
            return {"skipped": f"no time or data (left {left:.0f} s, DM step {step})"}
        iterations = int(min(DM_PAPER_ITERATIONS, left / (step * 1.15)))
        if iterations < 100:
            return {"skipped": f"only {iterations} iterations would fit"}
        overrides = [f"data.root={root}"]
    run_dir = out / "dm-ipc10"
    cmd = [sys.executable, "-m", "condensery", "run", str(REPO / "recipes" / "cifar10" / "dm-ipc10.yaml"),
           "-o", str(run_dir), "--quiet", "--force"]
    for item in [*overrides, f"synthesizer.iterations={iterations}"]:
        cmd += ["--set", item]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        return {"skipped": "DM ran past the deadline", "iterations": iterations}
    result = {"code": proc.returncode, "iterations": iterations, "paper_iterations": DM_PAPER_ITERATIONS,
              "published_accuracy": PUBLISHED_DM_IPC10, "seconds": round(time.perf_counter() - t0, 1),
              "stderr_tail": proc.stderr.strip().splitlines()[-3:]}
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        result.update(results=m["results"], comparisons=m["comparisons"], run_seconds=m["seconds"])
    return result


def environment() -> dict:
    import torch

    env = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        env["device"] = torch.cuda.get_device_name(0)
        a = torch.randn(8192, 8192, device="cuda")
        for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            x = a.to(dtype)
            x @ x
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(10):
                x @ x
            torch.cuda.synchronize()
            env[f"matmul_tflops_{name}"] = round(10 * 2 * 8192**3 / (time.perf_counter() - t0) / 1e12, 1)
    return env


def run(out: Path, dry_run: bool, budget: float) -> dict:
    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"dry_run": dry_run, "budget_s": budget}
    report["install"] = install(dry_run)
    report["environment"] = environment()
    root = unpack(out, dry_run)
    report["data_root"] = str(root) if root else None
    report["bench_matchers"] = bench(out, dry_run, start + budget * 0.4)
    report["compile_rows"] = compile_bench(out, dry_run, start + budget * 0.7)
    report["dm_ipc10"] = dm_paper(out, root, report["bench_matchers"].get("rows", []), dry_run, start + budget)
    report["seconds"] = round(time.time() - start, 1)
    (out / "gpu_suite.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="download the wheels and copy the data into .whl/ and .data/ (here)")
    r = sub.add_parser("run", help="install, unpack, benchmark, distil (there)")
    r.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-suite-out")))
    r.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU: checks every step runs")
    r.add_argument("--budget-s", type=float, default=500.0)
    args = ap.parse_args()
    if args.command == "prepare":
        prepare()
        return
    report = run(args.out, args.dry_run, args.budget_s)
    print(json.dumps({k: report[k] for k in ("seconds", "install", "environment")}, indent=2))


if __name__ == "__main__":
    main()
