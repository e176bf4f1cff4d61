"""Drive the MGDD study of docs/results.md (item 3 of the MGDD issue) in small stages.

One subcommand per stage (run each under the shared CPU lock, one thread; each holds it a few minutes):

  python studies/mgdd_study.py adapt     --target cifar10                      # (a) adapt to classes 5-9, IPC-10 set
  python studies/mgdd_study.py generate  --target cifar10 --ipcs 1 7 23 50     # (a) other sizes, evaluated
  python studies/mgdd_study.py pixel     --target cifar10 --ipc 10 --factor 1  # (c) same wall time as (a)
  python studies/mgdd_study.py pixel     --target cifar10 --ipc 10 --factor 10 # (c) 10x the time of (a)
  python studies/mgdd_study.py zeroshot  --target cifar10 --ipcs 10            # diagnostic: meta generator, no adaptation
  python studies/mgdd_study.py table                                           # markdown rows for docs/results.md
  python studies/mgdd_study.py scale --out DIR --chunks 16                     # meta-training scaling: 16 x 50 outer steps,
                                                                               # a generator after every chunk

Every stage is a sequence of ``condensery run`` / ``generate`` / ``eval`` commands and a
reading of the files they write, so the study needs nothing of MGDD's internals. The
diagnostics that did (``lossprobe``, ``ablate``, ``pairs``, ``imitate``: they read and
rebuilt the refiner network itself) are retired; their tables are in docs/results.md, with
the command that reruns them from the commit that last had them.

Every subcommand takes ``--variant``, ``--runs DIR`` (the study's runs folder) and ``--meta DIR``
(the meta generator); ``python studies/mgdd_study.py STAGE --help`` lists the rest.
``--variant unrolled`` runs the same stages for the unrolled refiner (``architecture.refine_steps``):
its meta generator ``runs/cifar10-mgdd-unrolled-meta``, the ``mgdd-unrolled-adapt.yaml``
recipes, runs in ``runs/mgdd-study-unrolled/``. ``--variant dm`` runs them with the distribution
matcher for the generator *and* for (c) (``runs/cifar10-mgdd-dm-meta``, ``mgdd-dm-*.yaml``, runs in
``runs/mgdd-study-dm/``). ``pixel --pixel-lr`` sets (c)'s lr (chosen on the validation split;
docs/results.md). ``scale`` writes under ``--out`` (default ``runs/mgdd-scaling``).

(b), the random subset, is evaluated next to every set by the evaluators themselves. It is
paired: the generator refines exactly that draw (``condensery.random_subset_draw``), and (c) starts from it
too (``synthesizer.init_from`` = ``condensery generate --option initial=true``).

Wall time of (a) at IPC k: the adapt run's ``seconds.synthesize`` (loading the generator,
the adaptation steps, generating its IPC-10 set) plus, for k != 10, the generation time of
the IPC-k set (``generate_seconds`` in the set's metadata: the forward pass alone). Start-up,
data loading and meta-training (done once, for every target) are not counted, just as a
run's ``seconds.synthesize`` of (c) leaves out start-up, data loading and the matcher's
preparation. (c)'s iterations: budget = factor x time(a, k); two probe runs (2 and 8
iterations) give the seconds per iteration and the fixed overhead of a pixel run, and
iterations = (budget - overhead) / seconds per iteration.

Every ``condensery`` call runs with ``--set runtime.threads=1`` (the machine is shared); set
``OMP_NUM_THREADS=1`` for the whole stage too.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from study_cli import ONE_THREAD, condensery, read_metrics

#: variant -> (runs folder, meta generator, adapt recipe, (c)'s recipe): the defaults of --runs and --meta
VARIANTS = MappingProxyType({
    "one-shot": ("runs/mgdd-study", "runs/cifar10-mgdd-meta/generator", "mgdd-adapt.yaml", "mgdd-scratch-pixel.yaml"),
    # digits target of "unrolled": its recipe is recipes/cifar10/mgdd-unrolled-adapt-digits.yaml (it needs a
    # CIFAR-10 run); use --target cifar10
    "unrolled": ("runs/mgdd-study-unrolled", "runs/cifar10-mgdd-unrolled-meta/generator", "mgdd-unrolled-adapt.yaml",
                 "mgdd-scratch-pixel.yaml"),
    # the one-shot generator meta-trained and adapted with the distribution matcher (DM), (c) with DM too
    "dm": ("runs/mgdd-study-dm", "runs/cifar10-mgdd-dm-meta/generator", "mgdd-dm-adapt.yaml",
           "mgdd-dm-scratch-pixel.yaml"),
})
RECIPES = MappingProxyType({"cifar10": "recipes/cifar10", "digits": "recipes/digits"})
#: the target's data section, for zero-shot generation from the meta generator (stored data: classes 0-4)
TARGET_DATA = MappingProxyType({"cifar10": ("--set", "data.classes=[5, 6, 7, 8, 9]"),
                                "digits": ("--set", "data={name: digits}")})
SCALING_RUNS = "runs/mgdd-scaling"  # default --out of scale


@dataclass(frozen=True)
class Study:
    """Where one variant of the study reads and writes, and (c)'s lr override."""

    runs: Path  # the study's runs folder
    meta: Path  # the meta generator
    adapt: str  # the adapt recipe (in the target's recipes folder)
    pixel: str  # (c)'s recipe
    pixel_lr: tuple[str, ...] = ()  # (c)'s lr override, empty: the recipe's
    lr_suffix: str = ""  # "-lr0.1" on (c)'s run names when the lr is overridden


def metrics(s: Study, name: str) -> dict | None:
    return read_metrics(s.runs / name)


def adapt(s: Study, target: str) -> None:
    condensery("run", f"{RECIPES[target]}/{s.adapt}", "-o", str(s.runs / f"{target}-adapt"), "--quiet",
               *ONE_THREAD)


def generate(s: Study, target: str, ipcs: list[int], generator: Path, prefix: str, extra: list[str]) -> None:
    for ipc in ipcs:
        out = s.runs / f"{target}-{prefix}-ipc{ipc}.safetensors"
        condensery("generate", str(generator), "--ipc", str(ipc), "--seed", "0", "-o", str(out), *extra)
        condensery("eval", str(out), "--recipe", f"{RECIPES[target]}/{s.adapt}",
                   "-o", str(s.runs / f"{target}-{prefix}-ipc{ipc}-eval"), "--quiet", *ONE_THREAD)


def generate_seconds(s: Study, target: str, ipc: int) -> float:
    from condensery import SyntheticSet

    return float(SyntheticSet.load(s.runs / f"{target}-gen-ipc{ipc}.safetensors").metadata["generate_seconds"])


def time_a(s: Study, target: str, ipc: int) -> float | None:
    """Wall time of (a) at ``ipc``: adaptation (+ its IPC-10 set), plus generating ``ipc``."""
    m = metrics(s, f"{target}-adapt")
    if m is None:
        return None
    seconds = m["seconds"]["synthesize"]
    if ipc != m["ipc"]:
        if not (s.runs / f"{target}-gen-ipc{ipc}.safetensors").is_file():
            return None
        seconds += generate_seconds(s, target, ipc)
    return seconds


def initial_set(s: Study, target: str, ipc: int) -> Path:
    """The adapted generator's unrefined X0 at ``ipc`` (= the evaluators' random subset, seed 0).

    (c) starts from these very images (``init_from``), so (a), (b) and (c) are paired: each
    difference is what the method adds to the same real images, not another draw's luck.
    """
    out = s.runs / f"{target}-x0-ipc{ipc}.safetensors"
    if not out.is_file():
        condensery("generate", str(s.runs / f"{target}-adapt" / "generator"), "--ipc", str(ipc), "--seed", "0",
                   "--option", "initial=true", "-o", str(out))
    return out


def pixel_probe(s: Study, target: str, ipc: int) -> tuple[float, float]:
    """Seconds per pixel iteration and the fixed overhead of ``synthesize``, from 2 and 8 iterations."""
    recipe = f"{RECIPES[target]}/{s.pixel}"
    seconds = {}
    for n in (2, 8):
        probe = s.runs / f"{target}-pixel-probe-ipc{ipc}-n{n}"
        condensery("run", recipe, "-o", str(probe), "--quiet", "--force", *ONE_THREAD,
                   "--set", f"synthesizer.ipc={ipc}", "--set", f"synthesizer.iterations={n}",
                   "--set", "evaluators.0.runs=1", "--set", "evaluators.0.epochs=1", *s.pixel_lr,
                   "--set", f"synthesizer.init_from={initial_set(s, target, ipc)}")
        seconds[n] = json.loads((probe / "metrics.json").read_text())["seconds"]["synthesize"]
    per_it = max((seconds[8] - seconds[2]) / 6, 1e-3)
    return per_it, max(seconds[2] - 2 * per_it, 0.0)


def pixel(s: Study, target: str, ipc: int, factor: float) -> None:
    base = time_a(s, target, ipc)
    if base is None:
        sys.exit(f"no wall time of (a) for {target} IPC {ipc}: run the adapt (and generate) stages first")
    budget = base * factor
    per_it, overhead = pixel_probe(s, target, ipc)
    iterations = max(1, round((budget - overhead) / per_it))
    print(f"budget {budget:.1f} s = {factor:g} x {base:.1f} s; {per_it:.3f} s/iteration + {overhead:.1f} s overhead: "
          f"{iterations} iterations", flush=True)
    condensery("run", f"{RECIPES[target]}/{s.pixel}", "-o",
               str(s.runs / f"{target}-pixel-ipc{ipc}-x{factor:g}{s.lr_suffix}"), "--quiet", "--force", *ONE_THREAD,
               "--set", f"synthesizer.ipc={ipc}", "--set", f"synthesizer.iterations={iterations}", *s.pixel_lr,
               "--set", f"synthesizer.init_from={initial_set(s, target, ipc)}")


def scale(chunks: int, chunk_steps: int, out: Path) -> None:
    """Meta-train the one-shot generator (``mgdd-meta.yaml``) for ``chunks`` x ``chunk_steps`` outer
    steps, saving a generator after every chunk (``out/scale-k/generator``) to probe how transfer
    grows with meta-training. Chunk k runs with seed k (new sub-tasks and feature networks) and
    continues chunk k-1's generator; the outer Adam state restarts at every chunk."""
    prev: Path | None = None
    for k in range(1, chunks + 1):
        run = out / f"scale-{k}"
        if not (run / "generator" / "config.json").is_file():
            more = ["--set", f"synthesizer.generator={prev / 'generator'}"] if prev else []
            condensery("run", "recipes/cifar10/mgdd-meta.yaml", "-o", str(run), "--quiet", *ONE_THREAD,
                       "--set", f"seed={k}", "--set", f"synthesizer.meta.steps={chunk_steps}",
                       "--set", "evaluators.0.epochs=1", *more)
        prev = run


def sec(m: dict | None) -> float | None:
    return m["seconds"]["synthesize"] if m else None


def cell(m: dict | None, role: str, seconds: float | None = None) -> str:
    if m is None:
        return "*missing*"
    for r in m["results"]:
        if r["set"] == role:
            shown = f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}"
            lr = m.get("lr") if role == "synthetic" else None
            note = ", ".join(x for x in (f"{seconds:.0f} s" if seconds is not None else "", f"lr {lr:g}" if lr else "") if x)
            return shown + (f" ({note})" if note else "")
    return "—"


def synthetic_val(m: dict) -> float:
    return next(r.get("val_mean", float("-inf")) for r in m["results"] if r["set"] == "synthetic")


def chosen_pixel(s: Study, target: str, ipc: int, factor: int) -> dict | None:
    """(c) at ``factor`` x (a)'s time: of the runs at every lr tried, the best on the validation split."""
    import yaml

    runs = []
    for path in [s.runs / f"{target}-pixel-ipc{ipc}-x{factor}" / "metrics.json",
                 *sorted(s.runs.glob(f"{target}-pixel-ipc{ipc}-x{factor}-lr*/metrics.json"))]:
        if path.is_file():
            m = json.loads(path.read_text())
            m["lr"] = yaml.safe_load((path.parent / "recipe.yaml").read_text())["synthesizer"]["lr"]
            runs.append(m)
    return max(runs, key=synthetic_val) if runs else None


def table(s: Study) -> None:
    """One row per target and IPC: (a) with its time, (b), (c) same time and 10x with theirs."""
    print("| target | IPC | (a) adapted generator | (b) random subset | (c) pixel, same time | (c) pixel, 10x time |"
          " (a) − (c)-10x |")
    print("|---|---|---|---|---|---|---|")
    for target, label in (("cifar10", "CIFAR-10 5–9"), ("digits", "digits")):
        adapt_m = metrics(s, f"{target}-adapt")
        for ipc in (1, 10, 50, 7, 23):
            a = adapt_m if adapt_m is not None and adapt_m["ipc"] == ipc else metrics(s, f"{target}-gen-ipc{ipc}-eval")
            c1, c10 = chosen_pixel(s, target, ipc, 1), chosen_pixel(s, target, ipc, 10)
            gap = "—"
            if a is not None and c10 is not None:
                acc = {k: next(r["mean"] for r in m["results"] if r["set"] == "synthetic") for k, m in (("a", a), ("c", c10))}
                gap = f"{100 * (acc['a'] - acc['c']):+.2f}"
            print(f"| {label} | {ipc} | {cell(a, 'synthetic', time_a(s, target, ipc) if a else None)} | "
                  f"{cell(a or c10, 'random')} | {cell(c1, 'synthetic', sec(c1))} | {cell(c10, 'synthetic', sec(c10))} |"
                  f" {gap} |")
    for path in sorted(s.runs.glob("*zeroshot*/metrics.json")):
        m = json.loads(path.read_text())
        print(f"\nzero-shot {path.parent.name}: {cell(m, 'synthetic')} vs random {cell(m, 'random')}")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--target", choices=list(RECIPES), default="cifar10")
    common.add_argument("--variant", choices=list(VARIANTS), default="one-shot")
    common.add_argument("--runs", type=Path, default=None, help="the study's runs folder (default: the variant's, "
                        "runs/mgdd-study[-unrolled|-dm])")
    common.add_argument("--meta", type=Path, default=None, help="the meta generator (default: the variant's, "
                        "runs/cifar10-mgdd[-unrolled|-dm]-meta/generator)")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def stage(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=text, description=text)

    stage("adapt", "(a) adapt the meta generator to the target, its IPC-10 set, evaluated")
    for name, text in (("generate", "(a) sets of other sizes from the adapted generator, evaluated"),
                       ("zeroshot", "diagnostic: the meta generator on the target as is (what adaptation adds)")):
        stage(name, text).add_argument("--ipcs", type=int, nargs="+", default=[1, 7, 23, 50])
    px = stage("pixel", "(c) pixel optimisation from the same X0, for factor x the wall time of (a)")
    px.add_argument("--ipc", type=int, default=10)
    px.add_argument("--factor", type=float, default=1.0)
    px.add_argument("--pixel-lr", type=float, default=None, help="the lr on the pixels (default: the recipe's)")
    sc = stage("scale", "meta-train in chunks, a generator after every chunk")
    sc.add_argument("--out", type=Path, default=Path(SCALING_RUNS), help=f"where its runs go (default {SCALING_RUNS})")
    sc.add_argument("--chunks", type=int, default=16, help="chunks of meta-training")
    sc.add_argument("--chunk-steps", type=int, default=50, help="outer steps per chunk")
    stage("table", "markdown rows for docs/results.md")
    return p


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    runs, meta, adapt_recipe, pixel_recipe = VARIANTS[a.variant]
    pixel_lr = getattr(a, "pixel_lr", None)
    s = Study(runs=a.runs or Path(runs), meta=a.meta or Path(meta), adapt=adapt_recipe, pixel=pixel_recipe,
              pixel_lr=() if pixel_lr is None else ("--set", f"synthesizer.lr={pixel_lr}"),
              lr_suffix="" if pixel_lr is None else f"-lr{pixel_lr:g}")
    s.runs.mkdir(parents=True, exist_ok=True)
    if a.stage == "adapt":
        adapt(s, a.target)
    elif a.stage == "generate":
        generate(s, a.target, a.ipcs, s.runs / f"{a.target}-adapt" / "generator", "gen", [])
    elif a.stage == "zeroshot":  # the meta generator on the target as is: what adaptation adds
        generate(s, a.target, a.ipcs, s.meta, "zeroshot", list(TARGET_DATA[a.target]))
    elif a.stage == "scale":
        scale(a.chunks, a.chunk_steps, a.out)
    elif a.stage == "pixel":
        pixel(s, a.target, a.ipc, a.factor)
    else:
        table(s)


if __name__ == "__main__":
    sys.exit(main())
