"""Every recipe under recipes/digits/ runs through the CLI, at a reduced budget, with no files.

The budget is cut by recipe *type* (synthesizer and matcher names read from the YAML), so a
new digits recipe is covered without editing this file: a few distillation steps, tiny
experts written to the test's own folder, and 2 evaluation networks x 2 epochs per
evaluator. A recipe that reads another run's output (MGDD adapt reads the meta generator)
gets its producer run first, at the same reduced budget, and is pointed at it with --set.
The measured, full-budget numbers of each recipe are in README.md and docs/results.md
("Every digits recipe, as shipped").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

DIGITS = Path(__file__).resolve().parents[1] / "recipes" / "digits"
RECIPES = sorted(DIGITS.glob("*.yaml"))

EVAL_BUDGET = {"runs": 2, "epochs": 2}
SYNTH_BUDGET = {  # synthesizer name -> reduced options
    "pixel": {"iterations": 2},
    "multisize": {"iterations": 2},
    "seqmatch": {"iterations": 4, "warm_epochs": 1, "stage_experts": 1},
    "dwa": {"iterations": 2, "steps": 2, "teacher_epochs": 1},
    "mgdd": {"meta.steps": 1, "adapt.steps": 1},
}
MATCHER_BUDGET = {  # matcher name -> reduced options ("{tmp}" is the test's folder)
    "gradient": {"outer_loop": 1, "inner_loop": 1},
    "krr": {"num_models": 1},
    "trajectory": {"syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1, "num_experts": 1,
                   "train_epochs": 2, "experts_dir": "{tmp}/experts"},
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def producers() -> dict[str, Path]:
    """Default run directory (runs/<name>) of every digits recipe -> its file."""
    return {f"runs/{load(p)['name']}": p for p in RECIPES}


def reduced(recipe: dict, tmp: Path) -> list[str]:
    """--set arguments that cut RECIPE's budget to seconds."""
    sets: dict[str, object] = {}
    syn = recipe["synthesizer"]
    mode_keys = {"meta-train": "meta.steps", "adapt": "adapt.steps"}
    for key, value in SYNTH_BUDGET.get(syn["name"], {}).items():
        if syn["name"] == "mgdd" and key != mode_keys[syn.get("mode", "meta-train")]:
            continue
        sets[f"synthesizer.{key}"] = value
    matcher = syn.get("matcher") or {}
    for key, value in MATCHER_BUDGET.get(matcher.get("name"), {}).items():
        sets[f"synthesizer.matcher.{key}"] = str(value).format(tmp=tmp) if isinstance(value, str) else value
    for i, ev in enumerate(recipe.get("evaluators", [])):
        if ev["name"] in ("hard-label", "soft-label"):
            sets.update({f"evaluators.{i}.{k}": v for k, v in EVAL_BUDGET.items()})
    return [arg for k, v in sets.items() for arg in ("--set", f"{k}={v}")]


def run(cli, path: Path, out: Path, tmp: Path, extra: list[str] = ()) -> dict:
    res = cli("run", str(path), "-o", str(out), "--quiet", "--set", "runtime.threads=1",
              *reduced(load(path), tmp), *extra)
    assert res.code == 0, res.err
    return json.loads((out / "metrics.json").read_text())


def test_every_digits_recipe_reads_only_what_digits_recipes_make():
    """No recipe depends on a CIFAR-10 (or any other) run: a path under runs/ is either an
    experts folder its trajectory matcher fills on first use, or another digits recipe's
    default run directory (whose producer the README table lists first)."""
    made = producers()
    for path in RECIPES:
        syn = load(path)["synthesizer"]
        for key in ("generator", "teacher", "init_from"):
            ref = syn.get(key)
            if ref is not None:
                assert str(Path(ref).parent) in made, f"{path.name}: synthesizer.{key}={ref} is made by no digits recipe"
        experts = (syn.get("matcher") or {}).get("experts_dir")
        assert experts is None or experts.startswith("runs/experts/digits"), f"{path.name}: experts_dir={experts}"


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_digits_recipe_runs_through_the_cli(cli, tmp_path, path):
    extra: list[str] = []
    generator = load(path)["synthesizer"].get("generator")
    if generator is not None:  # run the producing recipe first, then point the consumer at its output
        producer = producers()[str(Path(generator).parent)]
        run(cli, producer, tmp_path / "producer", tmp_path)
        extra = ["--set", f"synthesizer.generator={tmp_path / 'producer' / Path(generator).name}"]
    metrics = run(cli, path, tmp_path / "run", tmp_path, extra)
    assert (tmp_path / "run" / "synthetic.safetensors").exists()
    if load(path).get("evaluators") == []:  # a producer (mgdd-meta): judged through the recipe that reads it
        consumers = [p for p in RECIPES if str(Path(load(p)["synthesizer"].get("generator") or "x").parent)
                     == f"runs/{load(path)['name']}"]
        assert consumers and metrics["results"] == [] and (tmp_path / "run" / "generator").is_dir()
        return
    comparisons = metrics["comparisons"]
    assert comparisons, "no comparison with the random real subset"
    main = comparisons[0]
    assert main["paired"] and main["networks"] == EVAL_BUDGET["runs"] and len(main["ci95"]) == 2
