"""Drive the MGDD study of docs/results.md (item 3 of the MGDD issue) in small stages.

One subcommand per stage (run each under the shared CPU lock, one thread; each holds it a few minutes):

  python tools/mgdd_study.py adapt     --target cifar10                      # (a) adapt to classes 5-9, IPC-10 set
  python tools/mgdd_study.py generate  --target cifar10 --ipcs 1 7 23 50     # (a) other sizes, evaluated
  python tools/mgdd_study.py pixel     --target cifar10 --ipc 10 --factor 1  # (c) same wall time as (a)
  python tools/mgdd_study.py pixel     --target cifar10 --ipc 10 --factor 10 # (c) 10x the time of (a)
  python tools/mgdd_study.py zeroshot  --target cifar10 --ipcs 10            # diagnostic: meta generator, no adaptation
  python tools/mgdd_study.py lossprobe --target cifar10 --ipcs 1 10          # diagnostic: held-out krr loss of X0 / G(X0)
  python tools/mgdd_study.py table                                           # markdown rows for docs/results.md
  python tools/mgdd_study.py ablate --generator DIR --zero correction -o OUT # copy of a generator, one part switched off
  python tools/mgdd_study.py pairs --out DIR                                 # (X0, X*) pairs of pixel optimisation, for imitate
  python tools/mgdd_study.py imitate --out DIR --steps 400                   # is pixel optimisation's move learnable from X0?
  python tools/mgdd_study.py scale --out DIR --chunks 16                     # meta-training scaling: 16 x 50 outer steps,
                                                                             # a generator after every chunk

Every subcommand takes ``--variant``, ``--runs DIR`` (the study's runs folder) and ``--meta DIR``
(the meta generator); ``python tools/mgdd_study.py STAGE --help`` lists the rest.
``--variant unrolled`` runs the same stages for the unrolled refiner (``architecture.refine_steps``):
its meta generator ``runs/cifar10-mgdd-unrolled-meta``, the ``mgdd-unrolled-adapt.yaml``
recipes, runs in ``runs/mgdd-study-unrolled/``. ``--variant dm`` runs them with the distribution
matcher for the generator *and* for (c) (``runs/cifar10-mgdd-dm-meta``, ``mgdd-dm-*.yaml``, runs in
``runs/mgdd-study-dm/``). ``pixel --pixel-lr`` sets (c)'s lr (chosen on the validation split;
docs/results.md). ``pairs``, ``imitate`` and ``scale`` write under ``--out`` (default
``runs/mgdd-scaling``).

(b), the random subset, is evaluated next to every set by the evaluators themselves. It is
paired: the generator refines exactly that draw (``condensery.random_subset_draw``), and (c) starts from it
too (``synthesizer.init_from`` = ``condensery generate --initial``).

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

Size: one study's stages and the helpers they share (paths, wall times, the table); split, it would
scatter one procedure over files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

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
ONE_THREAD = ("--set", "runtime.threads=1")
#: the target's data section, for zero-shot generation from the meta generator (stored data: classes 0-4)
TARGET_DATA = MappingProxyType({"cifar10": ("--set", "data.classes=[5, 6, 7, 8, 9]"),
                                "digits": ("--set", "data={name: digits}")})
SCALING_RUNS = "runs/mgdd-scaling"  # default --out of pairs, imitate and scale


@dataclass(frozen=True)
class Study:
    """Where one variant of the study reads and writes, and (c)'s lr override."""

    runs: Path  # the study's runs folder
    meta: Path  # the meta generator
    adapt: str  # the adapt recipe (in the target's recipes folder)
    pixel: str  # (c)'s recipe
    pixel_lr: tuple[str, ...] = ()  # (c)'s lr override, empty: the recipe's
    lr_suffix: str = ""  # "-lr0.1" on (c)'s run names when the lr is overridden


def sh(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True)


def metrics(s: Study, name: str) -> dict | None:
    path = s.runs / name / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def adapt(s: Study, target: str) -> None:
    sh("condensery", "run", f"{RECIPES[target]}/{s.adapt}", "-o", str(s.runs / f"{target}-adapt"), "--quiet",
       *ONE_THREAD)


def generate(s: Study, target: str, ipcs: list[int], generator: Path, prefix: str, extra: list[str]) -> None:
    for ipc in ipcs:
        out = s.runs / f"{target}-{prefix}-ipc{ipc}.safetensors"
        sh("condensery", "generate", str(generator), "--ipc", str(ipc), "--seed", "0", "-o", str(out), *extra)
        sh("condensery", "eval", str(out), "--recipe", f"{RECIPES[target]}/{s.adapt}",
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
        sh("condensery", "generate", str(s.runs / f"{target}-adapt" / "generator"), "--ipc", str(ipc), "--seed", "0",
           "--initial", "-o", str(out))
    return out


def pixel_probe(s: Study, target: str, ipc: int) -> tuple[float, float]:
    """Seconds per pixel iteration and the fixed overhead of ``synthesize``, from 2 and 8 iterations."""
    recipe = f"{RECIPES[target]}/{s.pixel}"
    seconds = {}
    for n in (2, 8):
        probe = s.runs / f"{target}-pixel-probe-ipc{ipc}-n{n}"
        sh("condensery", "run", recipe, "-o", str(probe), "--quiet", "--force", *ONE_THREAD,
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
    sh("condensery", "run", f"{RECIPES[target]}/{s.pixel}", "-o",
       str(s.runs / f"{target}-pixel-ipc{ipc}-x{factor:g}{s.lr_suffix}"), "--quiet", "--force", *ONE_THREAD,
       "--set", f"synthesizer.ipc={ipc}", "--set", f"synthesizer.iterations={iterations}", *s.pixel_lr,
       "--set", f"synthesizer.init_from={initial_set(s, target, ipc)}")


def ablate(generator: Path, part: str, out: Path) -> None:
    """A copy of ``generator`` with one learned part switched off, to see what that part does.

    ``correction``: the UNet's output convolution zeroed (an unrolled refiner keeps its learned
    step sizes only; a one-shot refiner becomes the identity). ``steps``: the unrolled step
    sizes back to ``refine_lr`` (the correction alone). Generate / evaluate it like any other.
    """
    import torch
    from condensery_mgdd.artifact import load_meta_generator, save_meta_generator

    gen, config = load_meta_generator(generator)
    with torch.no_grad():
        if part == "correction":
            gen.unet.conv_out.weight.zero_()
            gen.unet.conv_out.bias.zero_()
        elif gen.refine_steps:
            gen.log_step_scale.zero_()
        else:
            sys.exit(f"{generator} is not an unrolled generator: it has no step sizes")
    history = [*config.get("history", []), {"mode": f"ablate-{part}", "from": str(generator)}]
    save_meta_generator(gen, out, {**config, "history": history})
    print(f"wrote {out}")


def study_data(s: Study, target: str, classes: list[int] | None = None) -> tuple:
    """(plan, context) of the target's adapt recipe, optionally on other CIFAR-10 ``classes``."""
    from condensery import get_registry, open_task

    overrides = [f"data.classes={list(classes)}"] if classes else None
    return open_task(f"{RECIPES[target]}/{s.adapt}", get_registry(), overrides=overrides, needs_synthesizer=True,
                     announce=False)


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
            sh("condensery", "run", "recipes/cifar10/mgdd-meta.yaml", "-o", str(run), "--quiet", *ONE_THREAD,
               "--set", f"seed={k}", "--set", f"synthesizer.meta.steps={chunk_steps}",
               "--set", "evaluators.0.epochs=1", *more)
        prev = run


def pairs(seeds: list[int], out: Path) -> None:
    """(X0, X*) pairs on the meta-training classes 0-4: pixel optimisation (lr 0.1, 60 iterations,
    the same krr matcher) from the random-subset draw of each seed, for ``imitate``."""
    for k in seeds:
        run = out / f"pairs-seed{k}"
        if not (run / "synthetic.safetensors").is_file():
            sh("condensery", "run", "recipes/cifar10/mgdd-scratch-pixel.yaml", "-o", str(run), "--quiet", *ONE_THREAD,
               "--set", f"seed={k}", "--set", "data.classes=[0, 1, 2, 3, 4]", "--set", "synthesizer.init=random-subset",
               "--set", "synthesizer.iterations=60", "--set", "synthesizer.lr=0.1",
               "--set", "evaluators.0.epochs=1", "--set", "evaluators.0.runs=1")


def imitate(s: Study, seeds: list[int], steps: int, out: Path) -> None:
    """Diagnostic: is the move X0 -> X* of pixel optimisation a function of X0 a refiner can learn?

    A fresh one-shot refiner (resolution 32, widths 32/64) regresses X* from X0 on the pairs of
    all seeds but the last (every other pass mirrored), and reports R^2 = 1 - MSE(G(X0), X*) / MSE(X0, X*) on
    the training pairs and on the held-out last seed. R^2 > 0 on held-out pairs would mean a
    transferable part of the move exists; writes ``out/imitate.json``."""
    import torch
    import torch.nn.functional as F
    from condensery import SyntheticSet, random_subset_draw
    from condensery_mgdd.generator import MetaGenerator, unet_config

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = study_data(s, "cifar10", [0, 1, 2, 3, 4])[1].data
    sets = []
    for k in seeds:
        x0, y0 = random_subset_draw(data, 10, k)
        target = SyntheticSet.load(out / f"pairs-seed{k}" / "synthetic.safetensors")
        if not torch.equal(target.hard_labels.cpu(), y0.cpu()):
            sys.exit(f"pairs-seed{k} was not optimised from the random-subset draw of seed {k}; rerun the pairs stage")
        sets.append((x0.float(), y0, target.images.float()))
    train, held = sets[:-1], sets[-1]
    gen = MetaGenerator(unet_config(3, 32, [32, 64]), context_pool=4)
    opt = torch.optim.Adam(gen.parameters(), 1e-3)

    def r2(pair: tuple) -> float:
        x0, y0, xs = pair
        with torch.no_grad():
            return 1 - F.mse_loss(gen(x0, y0, 10), xs).item() / F.mse_loss(x0, xs).item()

    curve = []
    for it in range(steps + 1):
        if it % 50 == 0:
            curve.append({"step": it, "train_r2": sum(map(r2, train)) / len(train), "heldout_r2": r2(held)})
            print(curve[-1], flush=True)
        if it == steps:
            break
        x0, y0, xs = train[it % len(train)]
        if it // len(train) % 2:  # every other pass flipped
            x0, xs = x0.flip(3), xs.flip(3)
        loss = F.mse_loss(gen(x0, y0, 10), xs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    (out / "imitate.json").write_text(json.dumps({"seeds": seeds, "heldout_seed": seeds[-1], "curve": curve}, indent=1))


def lossprobe(s: Study, target: str, draws: int, ipcs: list[int], extra: list[Path], classes: list[int] | None = None,
              out_path: Path | None = None) -> None:
    """Diagnostic: the krr loss of the target's validation split predicted from X0 (identity =
    random subset), from G_meta(X0) and from G_adapted(X0), over fresh initial draws and random
    feature networks never used in training; writes <runs>/<target>-lossprobe.json (or ``out_path``).

    ``classes`` probes other CIFAR-10 classes than the recipe's, e.g. the meta-training
    classes 0-4 (fresh draws, unseen feature networks): can the generator improve a new draw
    of classes it was trained on, before asking whether it transfers to new ones?"""
    import torch
    from condensery import make_generator
    from condensery_matching.krr import centred_one_hot, krr_predict
    from condensery_mgdd.artifact import load_meta_generator
    from condensery_mgdd.generation import GENERATION_STEP, run_generator

    torch.set_num_threads(1)
    plan, ctx = study_data(s, target, classes)
    data = ctx.data
    matcher = plan.matcher
    matcher.prepare(ctx)
    gens = {"identity (random subset)": None}
    for name, folder in (("meta", s.meta), ("adapted", s.runs / f"{target}-adapt" / "generator"),
                         *((str(f), f) for f in extra)):
        if folder.is_dir():
            gens[name], _ = load_meta_generator(folder)
            gens[name].add_channels(data.image_shape[0])
            gens[name].eval()
    k = data.num_classes
    out: dict[str, dict[str, list[float]]] = {}
    with torch.no_grad():
        for ipc in ipcs:
            for d in range(draws):
                x0, y0 = data.balanced_batch(ipc, make_generator(12345, "mgdd-lossprobe", ipc, d))
                nets = matcher.networks(10_000 + d)  # feature draws no training step used
                f_val = matcher.features(nets, data.val_x)
                for name, g in gens.items():
                    x = x0 if g is None else run_generator(g, matcher, x0, y0, ipc, GENERATION_STEP + 1000 * d)
                    pred = krr_predict(matcher.features(nets, x), f_val, centred_one_hot(y0, k), matcher.options.reg)
                    loss = 0.5 * ((pred - centred_one_hot(data.val_y, k)) ** 2).sum(1).mean().item()
                    acc = (pred.argmax(1) == data.val_y).float().mean().item()
                    move = (x - x0).pow(2).mean().sqrt().item()  # RMS of the refinement, normalised pixels
                    out.setdefault(f"ipc{ipc}", {}).setdefault(name, []).append([loss, acc, move])
    summary = {ipc: {n: [sum(v[i] for v in vals) / len(vals) for i in (0, 1, 2)] for n, vals in rows.items()}
               for ipc, rows in out.items()}
    (out_path or s.runs / f"{target}-lossprobe.json").write_text(json.dumps({"mean_loss_acc": summary, "raw": out}, indent=1))
    for ipc, rows in summary.items():
        for n, (loss, acc, move) in rows.items():
            print(f"{target} {ipc} {n:<26} val krr loss {loss:.4f}  krr val acc {100 * acc:.2f} %  move rms {move:.3f}")


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
    from condensery.recipe import load_yaml

    runs = []
    for path in [s.runs / f"{target}-pixel-ipc{ipc}-x{factor}" / "metrics.json",
                 *sorted(s.runs.glob(f"{target}-pixel-ipc{ipc}-x{factor}-lr*/metrics.json"))]:
        if path.is_file():
            m = json.loads(path.read_text())
            m["lr"] = load_yaml(path.parent / "recipe.yaml")["synthesizer"]["lr"]
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
    lp = stage("lossprobe", "diagnostic: held-out krr loss of X0, G_meta(X0) and G_adapted(X0)")
    lp.add_argument("--ipcs", type=int, nargs="+", default=[1, 7, 23, 50])
    lp.add_argument("--draws", type=int, default=6, help="initial draws per ipc")
    lp.add_argument("--generator", type=Path, nargs="*", default=[], help="extra generator folders to probe")
    lp.add_argument("--classes", type=int, nargs="+", default=None,
                    help="probe these CIFAR-10 classes instead of the recipe's (e.g. the source, 0-4)")
    lp.add_argument("-o", "--output", type=Path, help="the json (default: <runs>/<target>-lossprobe.json)")
    ab = stage("ablate", "a copy of a generator with one learned part switched off")
    ab.add_argument("--generator", type=Path, required=True, help="the generator folder")
    ab.add_argument("--zero", choices=["correction", "steps"], default="correction", help="the part to switch off")
    ab.add_argument("-o", "--output", type=Path, required=True, help="the new generator folder")
    for name, text in (("pairs", "(X0, X*) pairs of pixel optimisation on classes 0-4, for imitate"),
                       ("imitate", "diagnostic: can a refiner learn pixel optimisation's move from X0?"),
                       ("scale", "meta-train in chunks, a generator after every chunk")):
        sp = stage(name, text)
        sp.add_argument("--out", type=Path, default=Path(SCALING_RUNS), help=f"where its runs go (default {SCALING_RUNS})")
        if name != "scale":
            sp.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4], help="one pair per seed")
    sub.choices["imitate"].add_argument("--steps", type=int, default=400, help="regression steps")
    sub.choices["scale"].add_argument("--chunks", type=int, default=16, help="chunks of meta-training")
    sub.choices["scale"].add_argument("--chunk-steps", type=int, default=50, help="outer steps per chunk")
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
    elif a.stage == "lossprobe":
        lossprobe(s, a.target, a.draws, a.ipcs, a.generator, a.classes, a.output)
    elif a.stage == "ablate":
        ablate(a.generator, a.zero, a.output)
    elif a.stage == "pairs":
        pairs(a.seeds, a.out)
    elif a.stage == "imitate":
        imitate(s, a.seeds, a.steps, a.out)
    elif a.stage == "scale":
        scale(a.chunks, a.chunk_steps, a.out)
    elif a.stage == "pixel":
        pixel(s, a.target, a.ipc, a.factor)
    else:
        table(s)


if __name__ == "__main__":
    sys.exit(main())
