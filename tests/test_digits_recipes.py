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
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from fingerprint import EVAL_BUDGET, reduced  # noqa: E402  (the one budget cut, shared with the fingerprint tool)

DIGITS = Path(__file__).resolve().parents[1] / "recipes" / "digits"
RECIPES = sorted(DIGITS.glob("*.yaml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def producers() -> dict[str, Path]:
    """Default run directory (runs/<name>) of every digits recipe -> its file."""
    return {f"runs/{load(p)['name']}": p for p in RECIPES}


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
