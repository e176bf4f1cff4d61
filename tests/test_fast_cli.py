"""The command line answers without importing torch where it needs none.

``--help``, ``plugins`` and a recipe that names an unknown component must not import
torch, timm or the plugins' method modules (components are registered by reference and
imported on first use). The seconds are measured by tools/bench_cli.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import digits_recipe

PROBE = """
import sys
from condensery._engine.cli import main
code = 0
try:
    main({argv!r})
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m in HEAVY or m.split(".")[0] in HEAVY)
print("PROBE" + __import__("json").dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""
#: what a command that needs no network must not import: torch (and what imports it), and the
#: plugins' component modules (their options modules are light and fine)
HEAVY = ("torch", "timm", "accelerate", "torchvision", "condensery_matching.pixel", "condensery_matching.distribution",
         "condensery_eval.protocol", "condensery_eval.hard_label", "condensery.api.components", "condensery.api.context",
         "condensery.api.data", "condensery.data.augment", "condensery.data.realdata", "condensery.models.factory",
         "condensery.models.convnet")


def _probe(argv: list[str]) -> dict:
    code = f"HEAVY = {HEAVY!r}\n" + PROBE.format(argv=argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("PROBE"))
    result = json.loads(line[len("PROBE"):])
    result["err"] = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("PROBE")]
    return result


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--json"], ["run", "--help"]])
def test_listing_commands_import_no_torch(argv):
    result = _probe(argv)
    assert result["code"] in (0, None)
    assert result["heavy"] == []


def test_a_recipe_naming_an_unknown_component_fails_before_torch(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\ndata: {name: digits}\nsynthesizer: {name: pixell, ipc: 1}\n")
    result = _probe(["run", str(recipe)])
    assert result["code"] == 2
    assert result["heavy"] == []


GOOD = digits_recipe("r", synthesizer="{name: pixel, ipc: 1, iterations: 2, matcher: {name: distribution, batch_real: 8}}")


@pytest.mark.parametrize("old, new, expected", [
    ("ipc: 1,", "ipc: -1,", "synthesizer 'pixel': option 'ipc': Input should be greater than or equal to 1 (got -1)"),
    ("width: 8", "widht: 8", "model 'convnet' has no option 'widht' (did you mean 'width'?)"),
    ("width: 8", "width: 8, norm: batchnrom", "model 'convnet': option 'norm'"),
    ("batch_real: 8", "batch_real: 0", "synthesizer.matcher 'distribution': option 'batch_real'"),
    ("epochs: 1", "epochs: many", "evaluators[0] 'hard-label': option 'epochs'"),
    ("{name: digits}", "{name: digits, val_fraction: 2}", "data 'digits': option 'val_fraction'"),
    ("{name: hard-label, runs: 1, epochs: 1}", "{name: cross-arch, protocol: {name: soft-label, epoch: 3}}",
     "evaluators[0] 'cross-arch'"),
    ("{name: pixel, ipc: 1, iterations: 2,", "{name: seqmatch, ipc: 3, subsets: [1, 1], iterations: 2,",
     "subsets [1, 1] must be positive and add up to ipc (3)"),
])
def test_a_bad_option_value_or_model_option_fails_before_torch(tmp_path, old, new, expected):
    """Every section is validated against options that import no torch, before any component loads."""
    assert old in GOOD
    recipe = tmp_path / "r.yaml"
    recipe.write_text(GOOD.replace(old, new))
    result = _probe(["run", str(recipe), "-o", str(tmp_path / "run"), "--quiet"])
    assert result["code"] == 2, result
    assert len(result["err"]) == 1 and expected in result["err"][0], result["err"]
    assert result["heavy"] == []
    assert not (tmp_path / "run").exists()  # nothing written


VALIDATE_ALL = """
import json, sys
from pathlib import Path
from condensery._engine.plugins import get_registry
from condensery._engine.recipe import load_yaml
from condensery._engine.recipe_validation import validate
registry = get_registry()
checked = []
for path in sorted(Path({root!r}).rglob("*.yaml")):
    doc = load_yaml(path)
    if doc.get("model", {{}}).get("name", "convnet") not in registry.components["model"]:
        continue  # a timm name: only timm (torch) knows whether it is one
    validate(doc, registry, needs_synthesizer="synthesizer" in doc)
    checked.append(str(path))
heavy = sorted(m for m in sys.modules if m in HEAVY or m.split(".")[0] in HEAVY)
print(json.dumps({{"checked": len(checked), "heavy": heavy}}))
"""


def test_every_shipped_recipe_validates_without_importing_torch():
    """The guard against a heavy import creeping back into an options module (or into validate)."""
    root = Path(__file__).resolve().parents[1] / "recipes"
    code = f"HEAVY = {HEAVY!r}\n" + VALIDATE_ALL.format(root=str(root))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["checked"] >= 50
    assert result["heavy"] == []


def test_a_broken_reference_is_listed_by_plugins_check_and_named_when_used(cli):
    import condensery._engine.plugins as plugins_module
    from condensery._engine.plugins import build_registry, reset_registry
    from condensery._engine.registry import PluginLoadError

    class Plugin:
        @staticmethod
        def register_synthesizers(register):
            register("ghost", "condensery_no_such_module.synth:Ghost")

    from condensery import hookimpl

    Plugin.register_synthesizers = hookimpl(Plugin.register_synthesizers)
    plugins_module._REGISTRY = build_registry([("ghostly", Plugin)])
    try:
        info = plugins_module._REGISTRY.get("synthesizer", "ghost")
        with pytest.raises(PluginLoadError, match="synthesizer 'ghost' of plugin 'ghostly'"):
            _ = info.obj
        res = cli("plugins", "--check")
        assert res.code == 0
        assert "broken" in res.out and "ghost" in res.out and "No module named 'condensery_no_such_module'" in res.out
    finally:
        reset_registry()


def test_a_reference_without_a_colon_is_refused():
    from condensery import UserError, hookimpl
    from condensery._engine.plugins import build_registry

    class Plugin:
        @staticmethod
        @hookimpl
        def register_matchers(register):
            register("nocolon", "some.module.Name")

    with pytest.raises(UserError, match="'package.module:Name'"):
        build_registry([("bad", Plugin)])


def test_a_generate_option_typo_fails_before_torch(tmp_path):
    """Generator types register their options like every kind: a call is validated before any import."""
    folder = tmp_path / "generator"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"type": "pool", "format": "condensery.generator/2"}))
    result = _probe(["generate", str(folder), "--ipc", "2", "--option", "refine_step=2", "-o", str(tmp_path / "s")])
    assert result["code"] == 2 and result["heavy"] == []
    assert result["err"] == ["error: generator type 'pool' has no option 'refine_step' (did you mean 'refine_steps'?); "
                             "valid options: extend_iterations, refine_lr, refine_steps"]


def test_the_console_script_and_python_m_reach_the_engines_main():
    """``condensery`` (pyproject's console script) and ``python -m condensery`` run the same ``main``."""
    tomllib = pytest.importorskip("tomllib")
    import importlib

    from condensery._engine.cli import main

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    module, _, attr = tomllib.loads(pyproject.read_text())["project"]["scripts"]["condensery"].partition(":")
    assert getattr(importlib.import_module(module), attr) is main
    proc = subprocess.run([sys.executable, "-m", "condensery", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Usage: condensery" in proc.stdout, proc.stderr
