"""Every user-fixable mistake ends in one line on stderr, exit code 2, no traceback.

Each case builds its bad input in a temporary folder and runs the command in-process
(``cli``); run commands pass ``--quiet`` so the only stderr line is the error itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from condensery import SyntheticSet
from condensery.api.checkpoints import CheckpointStore
from safetensors.torch import save_file

GOOD = """
name: ue
seed: 0
data: {name: digits}
model: {name: convnet, depth: 2, width: 8}
synthesizer: {name: pixel, ipc: 1, iterations: 4, matcher: {name: distribution, batch_real: 8}}
evaluators: [{name: hard-label, runs: 1, epochs: 1}]
runtime: {threads: 1, checkpoint_every: 2}
"""
EVAL = "name: e\ndata: {name: digits}\nmodel: {name: convnet, depth: 2, width: 8}\nevaluators: [{name: hard-label, runs: 1, epochs: 1}]\n"


def recipe(d: Path, text: str = GOOD, name: str = "r.yaml") -> str:
    (d / name).write_text(text)
    return str(d / name)


def run(d: Path, *extra: str, text: str = GOOD) -> list[str]:
    return ["run", recipe(d, text), "-o", str(d / "run"), "--quiet", *extra]


def edited(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def finished(d: Path) -> Path:
    from condensery._engine.cli import main

    try:
        main(run(d))
    except SystemExit as exc:
        assert not exc.code
    return d / "run"


def a_set(d: Path, images=None, labels=None) -> str:
    x = torch.zeros(10, 1, 8, 8) if images is None else images
    y = torch.arange(10) if labels is None else labels
    SyntheticSet(x, y).save(d / "set.safetensors")
    return str(d / "set.safetensors")


def tensors_recipe(d: Path, train_labels=None) -> str:
    x = torch.randint(0, 255, (12, 1, 8, 8), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    save_file({"images": x, "labels": torch.arange(12) % 3 if train_labels is None else train_labels}, str(d / "tr.st"))
    save_file({"images": x, "labels": torch.arange(12) % 3}, str(d / "te.st"))
    return edited("data: {name: digits}", f"data: {{name: tensors, train: {d / 'tr.st'}, test: {d / 'te.st'}, val_fraction: 0.0}}")


def alias_bomb(prefix: str) -> str:
    """"Billion laughs": nine levels of nine aliases, 9^9 values once expanded, in one flow line."""
    levels = ["&l0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return prefix + "[" + ", ".join(levels) + "]\n"


def latin1_recipe(d: Path) -> str:
    (d / "r.yaml").write_bytes(GOOD.replace("name: ue", "name: r\u00e9sum\u00e9").encode("latin-1"))
    return str(d / "r.yaml")


#: environment of a case (set for that case only; plugin lists rebuild the registry)
ENVIRONMENT: dict[str, dict[str, str]] = {
    "unknown plugin to load": {"CONDENSERY_LOAD_PLUGINS": "no_such_plugin"},
    "unknown plugin to block": {"CONDENSERY_BLOCK_PLUGINS": "dwaa, seqmatch"},
}


def killed_with(d: Path, damage: Callable[[Path], None]) -> list[str]:
    """A finished run with its metrics removed (as if killed) and one artifact damaged."""
    out = finished(d)
    (out / "metrics.json").unlink()
    damage(out)
    return run(d)


def truncated_checkpoint(out: Path) -> None:
    (out / "synthetic.safetensors").unlink()
    store = CheckpointStore(out / "checkpoints")
    store.save("pixel", {"images": torch.zeros(10, 1, 8, 8)}, {"step": 2})
    path = next((out / "checkpoints").glob("pixel*"))
    path.write_bytes(path.read_bytes()[:40])


def generator_without_key(d: Path) -> list[str]:
    g = d / "gen"
    g.mkdir()
    (g / "config.json").write_text(json.dumps({"format": "condensery.generator/2"}))
    return ["generate", str(g), "--ipc", "1", "-o", str(d / "o.safetensors")]


def hf_recipe(d: Path, path: str, **extra: str) -> str:
    opts = "".join(f", {k}: {v}" for k, v in extra.items())
    return edited("data: {name: digits}", f"data: {{name: huggingface, path: '{path}'{opts}}}")


def parquet_without_labels(d: Path) -> list[str]:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    pq.write_table(pa.table({"image": [buf.getvalue()] * 4, "target": [0, 1, 0, 1]}), str(d / "t.parquet"))
    return run(d, text=hf_recipe(d, str(d / "t.parquet"), test_path=str(d / "t.parquet")))


def zca_set(d: Path) -> str:
    SyntheticSet(torch.zeros(10, 1, 8, 8), torch.arange(10),
                 metadata={"zca": {"eps": 0.1, "sha1": "x"}, "mean": [0.3], "std": [0.4]}).save(d / "z.safetensors")
    return str(d / "z.safetensors")


def exported(d: Path) -> Path:
    from condensery._engine.cli import main

    SyntheticSet(torch.zeros(10, 1, 8, 8), torch.arange(10), metadata={"mean": [0.3], "std": [0.4]}).save(d / "s.safetensors")
    try:
        main(["export", str(d / "s.safetensors"), str(d / "out")])
    except SystemExit as exc:
        assert not exc.code
    return d / "out"


# -- fixtures of the write rule: folders condensery wrote, made by hand (no run needed) ---------
def fake_run(d: Path, name: str = "run") -> Path:
    """A run directory: its recipe.yaml (the mark), metrics.json and a checkpoints folder."""
    out = d / name
    (out / "checkpoints").mkdir(parents=True)
    (out / "recipe.yaml").write_text(GOOD)
    (out / "metrics.json").write_text(json.dumps({"results": []}))
    return out


def fake_generator(d: Path) -> Path:
    g = d / "gen"
    g.mkdir()
    (g / "config.json").write_text(json.dumps({"format": "condensery.generator/2", "type": "pool"}))
    (g / "pool.safetensors").write_bytes(b"weights")
    return g


def fake_eval(d: Path) -> Path:
    out = d / "ev"
    out.mkdir()
    (out / "eval.json").write_text(json.dumps({"format": "condensery.eval/1", "source": "other", "key": "x"}))
    return out


def fake_export(d: Path) -> Path:
    out = d / "ex"
    (out / "train").mkdir(parents=True)
    (out / "set.json").write_text(json.dumps({"format": "condensery.export/1"}))
    return out


def user_folder(d: Path) -> Path:
    (d / "mine").mkdir()
    (d / "mine" / "notes.txt").write_text("mine")
    return d / "mine"


def user_file(d: Path, name: str, data: bytes = b"mine") -> Path:
    (d / name).write_bytes(data)
    return d / name


def foreign_safetensors(d: Path) -> Path:
    save_file({"w": torch.zeros(2)}, str(d / "weights.safetensors"))
    return d / "weights.safetensors"


def expert_shard(d: Path) -> Path:
    save_file({"params": torch.zeros(2, 3)}, str(d / "expert_0000.safetensors"),
              metadata={"condensery.expert": json.dumps({"format": "condensery.expert/1"})})
    return d / "expert_0000.safetensors"


def ev(d: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", a_set(d), "--recipe", recipe(d, EVAL, "e.yaml"), "-o", str(out), "--quiet", *extra]


def gen(d: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", str(fake_generator(d)), "--ipc", "1", "-o", str(out), *extra]


def rep(d: Path, out: Path, *extra: str) -> list[str]:
    return ["report", str(fake_run(d, "done")), "-o", str(out), *extra]


def ana(d: Path, out: Path, *extra: str) -> list[str]:
    return ["analyze", str(fake_run(d, "done")), "-o", str(out), "--quiet", *extra]


TRAJECTORY = GOOD.replace("matcher: {name: distribution, batch_real: 8}",
                          "matcher: {name: trajectory, num_experts: 1, train_epochs: 3, max_start_epoch: 1, expert_epochs: 1}")


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # -- recipe ------------------------------------------------------------------------------
    "recipe missing": (lambda d: ["run", str(d / "none.yaml")], "none.yaml"),
    "recipe not yaml": (lambda d: run(d, text="a: [b\n"), "YAML"),
    "recipe not a mapping": (lambda d: run(d, text="- 1\n- 2\n"), "mapping"),
    "unknown section": (lambda d: run(d, text=GOOD + "synthesiser: {}\n"), "synthesiser"),
    "unknown synthesizer": (lambda d: run(d, text=edited("name: pixel", "name: pixle")), "pixle"),
    "unknown synthesizer option": (lambda d: run(d, text=edited("iterations: 4", "iteratons: 4")), "iteratons"),
    "option of the wrong type": (lambda d: run(d, text=edited("ipc: 1", "ipc: ten")), "ipc"),
    "ipc zero": (lambda d: run(d, text=edited("ipc: 1", "ipc: 0")), "ipc"),
    "unknown matcher": (lambda d: run(d, text=edited("name: distribution", "name: distrib")), "distrib"),
    "unknown matcher option": (lambda d: run(d, text=edited("batch_real: 8", "batch_reel: 8")), "batch_reel"),
    "unknown evaluator": (lambda d: run(d, text=edited("name: hard-label", "name: hard")), "hard"),
    "unknown evaluator option": (lambda d: run(d, text=edited("runs: 1", "rnus: 1")), "rnus"),
    "evaluators not a list": (lambda d: run(d, text=edited("evaluators: [{name: hard-label, runs: 1, epochs: 1}]",
                                                           "evaluators: {name: hard-label}")), "must be a list"),
    "unknown dataset": (lambda d: run(d, text=edited("name: digits", "name: digitz")), "digitz"),
    "unknown dataset option": (lambda d: run(d, text=edited("{name: digits}", "{name: digits, val_frac: 0.1}")), "val_frac"),
    "unknown model": (lambda d: run(d, text=edited("name: convnet", "name: convnett")), "convnett"),
    "model option typo": (lambda d: run(d, text=edited("width: 8", "widht: 8")), "widht"),
    "negative model depth": (lambda d: run(d, text=edited("depth: 2", "depth: -1")), "depth"),
    "timm family without a small-image stem": (lambda d: run(d, text=edited(
        "model: {name: convnet, depth: 2, width: 8}", "model: {name: regnetx_002}")), "small_stem: false"),
    "seed negative": (lambda d: run(d, text=edited("seed: 0", "seed: -1")), "seed"),
    "seed too large": (lambda d: run(d, text=edited("seed: 0", "seed: 4294967296")), "seed"),
    "set without =": (lambda d: run(d, "--set", "synthesizer.ipc"), "--set"),
    "set of an unknown key": (lambda d: run(d, "--set", "synthesizer.bogus=1"), "bogus"),
    "bad mixed precision": (lambda d: run(d, "--set", "runtime.mixed_precision=fp8"), "mixed_precision"),
    "threads zero": (lambda d: run(d, "--set", "runtime.threads=0"), "threads"),
    "fp16 on the cpu": (lambda d: run(d, "--set", "runtime.mixed_precision=fp16"), "fp16"),
    "unknown command option": (lambda d: ["run", recipe(d), "--bogus"], "--bogus"),
    # -- strict recipes: what YAML itself would accept silently or expand without end ---------
    "recipe key twice": (lambda d: run(d, text=GOOD + "seed: 1\n"), "'seed' twice in one mapping (lines 3 and 9)"),
    "two synthesizer sections": (lambda d: run(d, text=GOOD + "synthesizer: {name: pixel, ipc: 2}\n"), "'synthesizer' twice"),
    "option twice in one section": (lambda d: run(d, text=edited("ipc: 1", "ipc: 1, ipc: 2")), "'ipc' twice"),
    "recipe alias bomb": (lambda d: run(d, text=GOOD + alias_bomb("bomb: ")), "expands its aliases"),
    "recipe alias inside its own anchor": (lambda d: run(d, text=GOOD + "loop: &l [1, *l]\n"), "inside its own anchor"),
    "recipe nested too deep": (lambda d: run(d, text=GOOD + "deep: " + "[" * 200 + "]" * 200 + "\n"), "deep"),
    "recipe not utf-8": (lambda d: ["run", latin1_recipe(d), "--quiet"], "r.yaml' is not UTF-8 text (byte 0xe9"),
    "set value with a key twice": (lambda d: run(d, "--set", "synthesizer.matcher={name: distribution, name: gradient}"),
                                   "'name' twice"),
    "set value alias bomb": (lambda d: run(d, "--set", alias_bomb("name=")), "expands its aliases"),
    "set value not utf-8": (lambda d: run(d, "--set", "name=r\udce9sum\u00e9"), "not UTF-8"),
    "generate option with a key twice": (lambda d: ["generate", str(d), "--ipc", "1", "-o", str(d / "o.safetensors"),
                                                    "--option", "x={a: 1, a: 2}"], "'a' twice"),
    "stored recipe.yaml with a key twice": (
        lambda d: killed_with(d, lambda out: (out / "recipe.yaml").write_text((out / "recipe.yaml").read_text() + "seed: 1\n")),
        "'seed' twice"),
    "recipe key that is not text": (lambda d: run(d, text=GOOD + "1: x\n"), "the key 1 is not text"),
    "set inside a value that is no section": (lambda d: run(d, "--set", "seed.x=1"), "'seed' holds 0, not a section"),
    "set key with a line break": (lambda d: run(d, "--set", "a\nb=1"), "unknown section 'a\\nb'"),
    "unknown plugin to load": (lambda d: ["plugins"], "CONDENSERY_LOAD_PLUGINS names 'no_such_plugin'"),
    "unknown plugin to block": (lambda d: run(d), "CONDENSERY_BLOCK_PLUGINS names 'dwaa'"),
    # -- data -------------------------------------------------------------------------------
    "tensors file missing": (lambda d: run(d, text=edited("data: {name: digits}",
                                                          f"data: {{name: tensors, train: {d}/x.st, test: {d}/x.st}}")), "x.st"),
    "tensors label negative": (lambda d: run(d, text=tensors_recipe(d, torch.tensor([0, 1, 2, -1] * 3))), "label -1"),
    "cifar root missing": (lambda d: run(d, text=edited("data: {name: digits}", f"data: {{name: cifar10, root: {d}/c}}")),
                           "never downloads"),
    "ipc above the smallest class": (lambda d: run(d, text=edited("ipc: 1", "ipc: 5000")), "ipc"),
    "unknown class in data.classes": (lambda d: run(d, text=edited("{name: digits}", "{name: digits, classes: [ten]}")), "ten"),
    "class listed twice": (lambda d: run(d, text=edited("{name: digits}", "{name: digits, classes: [1, 1]}")), "twice"),
    "huggingface hub id": (lambda d: run(d, text=hf_recipe(d, "cifar10/plain_text")), "never downloads"),
    "huggingface url": (lambda d: run(d, text=hf_recipe(d, "hf://datasets/cifar10")), "URL"),
    "huggingface folder missing": (lambda d: run(d, text=hf_recipe(d, str(d / "hfdata"))), "hfdata"),
    "huggingface folder without data": (lambda d: (d / "hfe").mkdir() or run(d, text=hf_recipe(d, str(d / "hfe"))),
                                        "save_to_disk"),
    "parquet without a label column": (parquet_without_labels, "label_column"),
    # -- artifacts ---------------------------------------------------------------------------
    "eval set missing": (lambda d: ["eval", str(d / "no.safetensors"), "--recipe", recipe(d, EVAL)], "no.safetensors"),
    "eval set of another format": (lambda d: ["eval", str((d / "s.txt").write_text("x") and d / "s.txt"),
                                              "--recipe", recipe(d, EVAL)], "s.txt"),
    "eval set corrupt": (lambda d: ["eval", str((d / "c.safetensors").write_bytes(b"junk") and d / "c.safetensors"),
                                    "--recipe", recipe(d, EVAL)], "c.safetensors"),
    "eval set of another shape": (lambda d: ["eval", a_set(d, images=torch.zeros(10, 3, 8, 8)), "--recipe", recipe(d, EVAL)],
                                  "shape"),
    "eval set labels out of range": (lambda d: ["eval", a_set(d, labels=torch.arange(10) + 5), "--recipe", recipe(d, EVAL)],
                                     "labels"),
    "eval set with nan": (lambda d: ["eval", a_set(d, images=torch.full((10, 1, 8, 8), float("nan"))),
                                     "--recipe", recipe(d, EVAL)], "non-finite"),
    "export set missing": (lambda d: ["export", str(d / "no.safetensors"), str(d / "out")], "no.safetensors"),
    "export to a folder of other files": (lambda d: ["export", a_set(d), str(d / "mine")] if (d / "mine").mkdir() or (d / "mine" / "notes.txt").write_text("x") else [], "holds files condensery did not write, not an export folder; pass --force"),
    "export to a file": (lambda d: ["export", a_set(d), str((d / "f").write_text("x") and d / "f")], "is a file"),
    "export of a set without mean/std": (lambda d: ["export", a_set(d), str(d / "out")], "mean/std"),
    "export of a zca set without --recipe": (lambda d: ["export", zca_set(d), str(d / "out")], "--recipe"),
    "eval of an export with a damaged set.json": (
        lambda d: ["eval", str((exported(d) / "set.json").write_text("{") and d / "out"), "--recipe", recipe(d, EVAL)],
        "set.json"),
    "eval of an export with a missing png": (
        lambda d: ["eval", str(next((exported(d) / "train").rglob("*.png")).unlink() or d / "out"),
                   "--recipe", recipe(d, EVAL)], "missing"),
    "init_from missing": (lambda d: run(d, text=edited("iterations: 4", f"iterations: 4, init_from: {d}/no.safetensors")),
                          "no.safetensors"),
    "generator folder missing": (lambda d: ["generate", str(d / "nogen"), "--ipc", "1", "-o", str(d / "o.safetensors")],
                                 "nogen"),
    "generator config missing a key": (generator_without_key, "config.json"),
    "generate ipc zero": (lambda d: ["generate", str(d), "--ipc", "0", "-o", str(d / "o.safetensors")], "ipc"),
    "report of a folder without metrics": (lambda d: ["report", str(d), "-o", str(d / "r.md")], "metrics.json"),
    "report of bad json": (lambda d: ["report", str((d / "metrics.json").write_text("{") and d),
                                      "-o", str(d / "r.md")], "JSON"),
    "report -o an existing directory": (lambda d: ["report", str(finished(d)), "-o", str(d)], "directory"),
    # -- the write rule: nothing a user or condensery relies on is replaced --------------------
    "eval -o a run directory": (lambda d: ev(d, fake_run(d)), "is a run directory (marked by"),
    "eval -o a run directory, forced": (lambda d: ev(d, fake_run(d), "--force"), "never replaces a run directory"),
    "eval -o a folder of the user's": (lambda d: ev(d, user_folder(d)), "holds files condensery did not write"),
    "eval -o a file": (lambda d: ev(d, user_file(d, "f")), "is a file, not a folder"),
    "eval -o inside a run's checkpoints": (lambda d: ev(d, fake_run(d) / "checkpoints" / "e"),
                                           "checkpoints' of the run directory"),
    "eval -o inside a generator folder": (lambda d: ev(d, fake_generator(d) / "e"), "lies inside the generator folder"),
    "eval -o an export folder": (lambda d: ev(d, fake_export(d)), "is an export folder"),
    "eval -o the set itself": (lambda d: ["eval", a_set(d), "--recipe", recipe(d, EVAL), "-o", str(d / "set.safetensors")],
                               "which this command reads"),
    "eval -o inside the image folder it reads": (lambda d: ["eval", str(exported(d)), "--recipe", recipe(d, EVAL),
                                                            "-o", str(d / "out" / "train" / "e")], "which this command reads"),
    "generate -o inside the generator folder": (lambda d: gen(d, d / "gen" / "pool.safetensors"), "which this command reads"),
    "generate -o the generator folder": (lambda d: gen(d, d / "gen"), "is '"),
    "generate -o an existing directory": (lambda d: gen(d, user_folder(d)), "is a folder; give a file path"),
    "generate -o a safetensors file of the user's": (lambda d: gen(d, foreign_safetensors(d)),
                                                     "exists and condensery did not write it"),
    "generate -o an expert shard": (lambda d: gen(d, expert_shard(d)), "is an expert shard, not a synthetic set"),
    "generate over a picture of the user's": (lambda d: user_file(d, "o.png") and gen(d, d / "o.safetensors"),
                                              "the picture '"),
    "generate -o another run's set": (lambda d: gen(d, fake_run(d) / "synthetic.safetensors"),
                                      "synthetic.safetensors' of the run directory"),
    "generate -o another run's set, forced": (lambda d: gen(d, fake_run(d) / "synthetic.safetensors", "--force"),
                                              "of the run directory"),
    "generate -o inside another generator": (lambda d: gen(d, fake_generator(d / "other" if (d / "other").mkdir()
                                                                              is None else d) / "x.safetensors"),
                                             "the generator folder"),
    "export into a run directory": (lambda d: ["export", a_set(d), str(fake_run(d))], "is a run directory"),
    "export into a generator folder": (lambda d: ["export", a_set(d), str(fake_generator(d))], "generator folder"),
    "export into an evaluation folder": (lambda d: ["export", a_set(d), str(fake_eval(d))], "is an evaluation folder"),
    "export into a run's checkpoints": (lambda d: ["export", a_set(d), str(fake_run(d) / "checkpoints" / "x")],
                                        "checkpoints' of the run directory"),
    "report -o a markdown file of the user's": (lambda d: rep(d, user_file(d, "notes.md")), "condensery did not write it"),
    "report -o over a picture of the user's": (lambda d: user_file(d, "r.png") and rep(d, d / "r.md"), "the plot '"),
    "report -o the metrics it reads": (lambda d: rep(d, d / "done" / "metrics.json"), "which this command reads"),
    "report -o inside a generator folder": (lambda d: rep(d, fake_generator(d) / "r.md"), "generator folder"),
    "report -o inside a run's logs": (lambda d: rep(d, fake_run(d) / "logs" / "r.md"), "logs' of the run directory"),
    "analyze -o a folder of the user's": (lambda d: ana(d, user_folder(d)), "not an analysis folder; pass --force"),
    "analyze -o another run directory": (lambda d: ana(d, fake_run(d)), "is a run directory"),
    "analyze -o the run's metrics": (lambda d: ana(d, d / "done" / "metrics.json"), "which this command reads"),
    "analyze -o inside a generator": (lambda d: ana(d, fake_generator(d) / "a"), "generator folder"),
    "run -o an evaluation folder": (lambda d: ["run", recipe(d), "-o", str(fake_eval(d)), "--quiet"],
                                    "is an evaluation folder (marked by"),
    "run -o a generator folder": (lambda d: ["run", recipe(d), "-o", str(fake_generator(d)), "--quiet"],
                                  "is the generator folder"),
    "run -o a generator folder, forced": (lambda d: ["run", recipe(d), "-o", str(fake_generator(d)), "--quiet", "--force"],
                                          "is the generator folder"),
    "run -o inside another run's checkpoints": (lambda d: ["run", recipe(d), "-o", str(fake_run(d) / "checkpoints" / "r"),
                                                           "--quiet"], "checkpoints' of the run directory"),
    "run -o an export folder": (lambda d: ["run", recipe(d), "-o", str(fake_export(d)), "--quiet"], "is an export folder"),
    "run -o a folder of the user's": (lambda d: ["run", recipe(d), "-o", str(user_folder(d)), "--quiet"],
                                      "holds files condensery did not write, not a run directory"),
    "experts -o a run directory of another recipe": (
        lambda d: ["experts", recipe(d, TRAJECTORY, "t.yaml"), "-o", str(fake_run(d)), "--quiet"], "different recipe"),
    "experts -o a generator folder": (lambda d: ["experts", recipe(d, TRAJECTORY, "t.yaml"), "-o", str(fake_generator(d)),
                                                 "--quiet"], "generator folder"),
    # -- run directory -----------------------------------------------------------------------
    "-o is a file": (lambda d: ["run", recipe(d), "-o", str((d / "f").write_text("x") and d / "f"), "--quiet"], "file"),
    "-o cannot be created": (lambda d: ["run", recipe(d), "-o", "/dev/null/run", "--quiet"], "/dev/null/run"),
    "corrupt recipe.yaml in the run directory": (
        lambda d: killed_with(d, lambda out: (out / "recipe.yaml").write_text("a: [\n")), "recipe.yaml"),
    "finished run of another recipe": (lambda d: [*run(d)[:-1], "--set", "seed=1", "--quiet"] if finished(d) else [],
                                       "different recipe"),
    "truncated checkpoint on resume": (lambda d: killed_with(d, truncated_checkpoint), "checkpoint"),
    "corrupt evaluate.json on resume": (
        lambda d: killed_with(d, lambda out: (out / "checkpoints").mkdir(exist_ok=True)
                              or (out / "checkpoints" / "evaluate.json").write_text("{")), "evaluate.json"),
    # -- runtime and environment -------------------------------------------------------------
    "cache pointing at a file": (lambda d: ["eval", a_set(d), "--recipe", recipe(d, EVAL.replace(
        "{name: hard-label, runs: 1, epochs: 1}", "{name: ranking, protocol: hard-label, hard: {runs: 1, epochs: 1}}")),
        "--quiet"], "CONDENSERY_CACHE"),
    "processes zero": (lambda d: run(d, "--processes", "0"), "processes"),
    # -- capabilities and generator options --------------------------------------------------
    "experts for a matcher without expert trajectories": (
        lambda d: ["experts", recipe(d), "--quiet"],
        "`condensery experts` needs ExpertMatching (expert_spec, experts_directory, use_experts), which matcher "
        "'distribution' does not offer"),
    "a generate flag of one generator type": (
        lambda d: ["generate", str(d), "--ipc", "2", "--labels", "krr", "-o", str(d / "o.safetensors")],
        "go through --option labels=VALUE"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_mistake_is_one_line_exit_2(case, cli, tmp_path, monkeypatch):
    build, expected = CASES[case]
    d = tmp_path / "case"
    d.mkdir()
    argv = build(d)
    if case == "cache pointing at a file":
        (d / "cachefile").write_text("x")
        monkeypatch.setenv("CONDENSERY_CACHE", str(d / "cachefile"))
    for name, value in ENVIRONMENT.get(case, {}).items():
        from condensery._engine import plugins

        monkeypatch.setenv(name, value)
        monkeypatch.setattr(plugins, "_REGISTRY", None)  # built again under this environment, restored after
    res = cli(*argv)
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert res.code == 2, (case, res.code, res.err[-2000:])
    assert "Traceback" not in res.err, res.err
    assert len(lines) == 1, res.err
    assert expected in lines[0], lines[0]


def test_there_are_at_least_a_hundred_and_twenty_cases():
    assert len(CASES) >= 120


BUGGY = '''
from condensery import Synthesizer, SynthesizerOptions, hookimpl


class Buggy(Synthesizer):
    Options = SynthesizerOptions

    def synthesize(self, ctx):
        return 1 / 0


@hookimpl
def register_synthesizers(register):
    register("buggy", Buggy)
'''


def test_a_bug_in_a_plugin_names_the_plugin_exit_1_and_debug_shows_the_traceback(cli, tmp_path, monkeypatch):
    import importlib
    import sys

    from condensery._engine import plugins

    (tmp_path / "buggy_plugin.py").write_text(BUGGY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("buggy_plugin")
    monkeypatch.setattr(plugins, "_REGISTRY", plugins.build_registry(extra_plugins=[("buggy", module)]))
    d = tmp_path / "case"
    d.mkdir()
    argv = run(d, text=edited("{name: pixel, ipc: 1, iterations: 4, matcher: {name: distribution, batch_real: 8}}",
                              "{name: buggy, ipc: 1}"))
    res = cli(*argv)
    assert res.code == 1 and "Traceback" not in res.err, res.err
    [line] = [x for x in res.err.splitlines() if x.strip()]
    assert "a bug in plugin 'buggy'" in line and "ZeroDivisionError" in line and "--debug" in line
    with pytest.raises(ZeroDivisionError):
        cli(*argv, "--debug", "--force")
    monkeypatch.setenv("CONDENSERY_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli(*argv, "--force")
    sys.modules.pop("buggy_plugin", None)


def test_a_model_typo_leaves_nothing_that_refuses_the_corrected_recipe(cli, tmp_path):
    """The model section is validated with the rest of the recipe, before the run directory exists."""
    out = tmp_path / "run"
    bad = recipe(tmp_path, edited("width: 8", "widht: 8"), "bad.yaml")
    res = cli("run", bad, "-o", str(out), "--quiet")
    assert res.code == 2, res.err
    [line] = [x for x in res.err.splitlines() if x.strip()]
    assert line == ("error: model 'convnet' has no option 'widht' (did you mean 'width'?); "
                    "valid options: activation, depth, norm, pooling, small_stem, width")
    assert not out.exists()  # not even the lock: nothing was written
    res = cli("run", recipe(tmp_path), "-o", str(out), "--quiet")  # no --force needed
    assert res.code == 0, res.err
    assert (out / "metrics.json").is_file() and (out / "recipe.yaml").is_file()
