"""Cost of sets of any size: one pool run against the separate per-size runs, and `generate` per size.

Each synthesis is ``condensery run --no-eval`` in a fresh process, so its peak resident memory
is its own; its seconds are the run's own measure of synthesis (``seconds_synthesize`` in the
set). Then ``condensery generate`` is timed per size on the pool's folder (and on an mgdd
folder, if given): median of ``--repeats`` commands, both the whole command (start-up
included: what a user waits for) and the generation alone (``generate_seconds``, no data
loading). JSON out.

    python tools/bench_generators.py --pool-recipe recipes/any-size/digits-pool-dm.yaml \\
        --pixel-recipe recipes/digits/dm-ipc1.yaml --sizes 1 7 10 23 50 --iterations 300 \\
        --set "data.classes=[5,6,7,8,9]" --mgdd runs/digits-mgdd-adapt/generator -o bench.json

Run it alone on the machine (one job per core); read ratios, not seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def condensery(*args: str) -> tuple[float, float]:
    """Run ``condensery ARGS`` in a fresh process: (wall seconds, its peak resident memory in MB)."""
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "condensery", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest of all children so far
    wall = time.perf_counter() - t
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"condensery {args[0]} failed (exit {child.returncode}); its error is printed above")
    return wall, usage.ru_maxrss / 1024  # Linux: KiB


def synth(recipe: str, out: Path, overrides: list[str]) -> dict:
    from condensery import SyntheticSet

    _, peak = condensery("run", recipe, "-o", str(out), "--no-eval", "--force", "--quiet",
                         *(a for o in ["runtime.threads=1", *overrides] for a in ("--set", o)))
    seconds = float(SyntheticSet.load(out / "synthetic.safetensors").metadata["seconds_synthesize"])
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(peak, 1)}


def time_generate(folder: Path, sizes: list[int], repeats: int, workdir: Path, options: dict | None = None) -> dict:
    from condensery import SyntheticSet

    extra = [a for k, v in (options or {}).items() for a in ("--option", f"{k}={v}")]
    out = {}
    for ipc in sizes:
        walls, inner = [], []
        for r in range(repeats):
            path = workdir / f"g{ipc}-{r}.safetensors"
            wall, _ = condensery("generate", str(folder), "--ipc", str(ipc), "--seed", "0", "-o", str(path), *extra)
            walls.append(wall)
            inner.append(SyntheticSet.load(path).metadata["generate_seconds"])
        out[str(ipc)] = {"wall_s": round(statistics.median(walls), 4), "generate_s": round(statistics.median(inner), 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool-recipe", required=True)
    ap.add_argument("--pixel-recipe", required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 7, 10, 23, 50])
    ap.add_argument("--iterations", type=int, default=300, help="steps of every synthesis (pool and per size)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--mgdd", default=None, help="an mgdd generator folder to time as well")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-generators-"))
    common = [*args.overrides, f"synthesizer.iterations={args.iterations}"]
    k = max(args.sizes)
    result: dict = {"iterations": args.iterations, "sizes": args.sizes, "overrides": args.overrides}
    result["pool"] = synth(args.pool_recipe, work / "pool", [*common, f"synthesizer.ipc={k}"])
    result["per_size"] = {str(i): synth(args.pixel_recipe, work / f"px{i}", [*common, f"synthesizer.ipc={i}"])
                          for i in args.sizes}
    separate = sum(r["seconds"] for r in result["per_size"].values())
    result["pool_over_separate_seconds"] = round(result["pool"]["seconds"] / separate, 3)
    result["pool_over_max_separate_peak"] = round(
        result["pool"]["peak_rss_mb"] / max(r["peak_rss_mb"] for r in result["per_size"].values()), 3)
    result["generate_pool"] = time_generate(work / "pool" / "generator", args.sizes, args.repeats, work)
    if args.mgdd:
        result["generate_mgdd"] = time_generate(Path(args.mgdd), args.sizes, args.repeats, work)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
