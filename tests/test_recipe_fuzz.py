"""A fuzzer over the recipe loader and ``--set``: a plan or one line, never a traceback.

Hypothesis writes recipe files (random YAML documents, random bytes, the test recipe with
random edits, duplicated lines and aliases) and ``--set`` overrides (known and random keys,
random YAML and text values) and runs ``condensery run RECIPE`` in-process on each. Every
example must end in exactly one of two ways:

- the plan is valid: the run then stops at its first step after validation, because ``-o``
  names a plain file (one line, exit 2, naming that file) -- no data is loaded and nothing is
  distilled in any example;
- the input is refused: exit 2 with exactly one line on stderr, no traceback.

Anything else (exit 1, a traceback, two lines) is a failure Hypothesis shrinks to the
smallest recipe that shows it.

Examples are derandomized: every run tries the same ones. CI tries ``CONDENSERY_FUZZ_EXAMPLES``
per property (default 25); a longer search, e.g. before a release:
``CONDENSERY_FUZZ_EXAMPLES=2000 pytest tests/test_recipe_fuzz.py`` (about 90 s on one core).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import digits_recipe

EXAMPLES = int(os.environ.get("CONDENSERY_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

GOOD = digits_recipe("fuzz", synthesizer="{name: pixel, ipc: 1, iterations: 2, matcher: {name: distribution, batch_real: 8}}")

#: keys a recipe really has, so that edits reach validation rather than stop at the section names
KEYS = ["name", "seed", "data", "model", "synthesizer", "evaluators", "runtime", "matcher", "ipc", "iterations", "lr",
        "init", "init_from", "depth", "width", "norm", "batch_real", "runs", "epochs", "augment", "threads",
        "mixed_precision", "checkpoint_every", "classes", "val_fraction", "train_per_class", "root", "dsa", "optimizer"]
PATHS = ["name", "seed", "data", "data.name", "data.classes", "data.val_fraction", "model", "model.name", "model.depth",
         "model.width", "model.norm", "synthesizer", "synthesizer.name", "synthesizer.ipc", "synthesizer.iterations",
         "synthesizer.lr", "synthesizer.init", "synthesizer.matcher", "synthesizer.matcher.name",
         "synthesizer.matcher.batch_real", "evaluators", "evaluators.0", "evaluators.0.name", "evaluators.0.runs",
         "evaluators.0.epochs", "evaluators.0.augment", "runtime", "runtime.threads", "runtime.mixed_precision",
         "runtime.checkpoint_every"]
NAMES = ["pixel", "distribution", "gradient", "hard-label", "digits", "convnet", "mlp", "random", "krr", "no", "bf16"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.integers(-3, 12),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NAMES), st.text(max_size=12),
)


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of ``choices``, each drawn in proportion to its weight (``one_of`` draws them about evenly)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda i: pool[i])


keys = weighted((4, st.sampled_from(KEYS)), (1, st.text(max_size=8)), (1, st.one_of(st.integers(-2, 3), st.booleans())))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def dumped(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=None, allow_unicode=True)


@st.composite
def edited_recipes(draw) -> str:
    """The test recipe with a few random edits: values replaced, keys dropped, lines repeated, aliases."""
    doc = yaml.safe_load(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS)).split(".")
        node = doc
        for part in path[:-1]:
            node = node[int(part)] if isinstance(node, list) and part.isdigit() and int(part) < len(node) else (
                node.get(part) if isinstance(node, dict) else None)
            if not isinstance(node, (dict, list)):
                break
        else:
            last = path[-1]
            if isinstance(node, dict):
                if draw(st.booleans()):
                    node[last] = draw(values)
                else:
                    node.pop(last, None)
    text = dumped(doc)
    lines = text.splitlines(keepends=True)
    if draw(st.booleans()):  # a line given twice: a duplicate key wherever it lands
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(draw(st.integers(0, len(lines))), lines[i])
    if draw(st.booleans()):  # a section shared through an alias, sometimes one that holds itself
        target = draw(st.sampled_from(["model", "runtime", "data"]))
        lines = [line.replace(f"{target}:", f"{target}: &shared", 1) if line.startswith(f"{target}:") else line
                 for line in lines]
        lines.append(draw(st.sampled_from(["extra: *shared\n", "model: *shared\n", "runtime: {threads: *shared}\n"])))
    return "".join(lines)


documents = weighted(
    (1, values.map(dumped)),                                           # any YAML value, mostly not a recipe
    (1, st.dictionaries(st.sampled_from(KEYS), values, max_size=7).map(dumped)),  # recipe-shaped mappings
    (3, edited_recipes()),                                             # the test recipe, edited
    (1, st.text(max_size=80)),                                         # text that may not be YAML at all
)
set_keys = weighted((5, st.sampled_from(PATHS)), (1, st.text(max_size=10)))
set_values = st.one_of(st.text(max_size=12), scalars.map(lambda v: dumped(v).strip().removesuffix("\n...")),
                       values.map(lambda v: yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()))
overrides = st.lists(st.tuples(set_keys, set_values), min_size=1, max_size=3).map(
    lambda pairs: [f"{k}={v}" for k, v in pairs])


def run_cli(recipe: Path, blocker: Path, sets: list[str]) -> tuple[int, list[str]]:
    """``condensery run RECIPE -o BLOCKER --quiet --set ...`` in this process: (exit code, stderr lines)."""
    from condensery._engine.cli import main

    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(["run", str(recipe), "-o", str(blocker), "--quiet", *(a for s in sets for a in ("--set", s))])
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def check(recipe: Path, blocker: Path, sets: list[str]) -> str:
    """The outcome of one example, asserting the contract; 'valid' or 'refused'."""
    code, lines = run_cli(recipe, blocker, sets)
    assert code == 2, (code, lines)
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0] and lines[0].startswith("error: "), lines
    return "valid" if f"-o {blocker} is a file" in lines[0] else "refused"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("fuzz")
    (d / "blocker").write_text("a plain file: a valid plan stops here\n")
    return d / "recipe.yaml", d / "blocker"


def test_the_harness_tells_a_valid_plan_from_a_refused_one(workdir):
    recipe, blocker = workdir
    recipe.write_text(GOOD)
    assert check(recipe, blocker, []) == "valid"
    assert check(recipe, blocker, ["synthesizer.ipc=0"]) == "refused"


@FUZZ
@given(text=documents)
def test_random_recipe_documents_are_a_plan_or_one_line(workdir, text):
    recipe, blocker = workdir
    recipe.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(recipe, blocker, [])


@FUZZ
@given(data=st.binary(max_size=64), at=st.integers(0, len(GOOD)))
def test_random_bytes_in_a_recipe_are_a_plan_or_one_line(workdir, data, at):
    recipe, blocker = workdir
    good = GOOD.encode()
    recipe.write_bytes(good[:at] + data + good[at:])
    check(recipe, blocker, [])


@FUZZ
@given(sets=overrides)
def test_random_set_overrides_are_a_plan_or_one_line(workdir, sets):
    recipe, blocker = workdir
    recipe.write_text(GOOD)
    check(recipe, blocker, sets)
