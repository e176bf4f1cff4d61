"""The command line answers without importing torch where it needs none.

``--help``, ``plugins`` and a recipe that names an unknown component must not import
torch, timm or the plugins' method modules (components are registered by reference and
imported on first use). The seconds are measured by tools/bench_cli.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import sys
from condensery.cli import main
code = 0
try:
    main({argv!r})
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "timm", "accelerate", "condensery_matching.pixel", "condensery_eval.protocol")
               if m in sys.modules)
print("PROBE" + __import__("json").dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def _probe(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, timeout=120)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("PROBE"))
    return json.loads(line[len("PROBE"):])


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


def test_a_broken_reference_is_listed_by_plugins_check_and_named_when_used(cli):
    import condensery.plugins as plugins_module
    from condensery.plugins import build_registry, reset_registry

    class Plugin:
        @staticmethod
        def register_synthesizers(register):
            register("ghost", "condensery_no_such_module.synth:Ghost")

    from condensery import hookimpl

    Plugin.register_synthesizers = hookimpl(Plugin.register_synthesizers)
    plugins_module._REGISTRY = build_registry([("ghostly", Plugin)])
    try:
        info = plugins_module._REGISTRY.get("synthesizer", "ghost")
        with pytest.raises(plugins_module.PluginLoadError, match="synthesizer 'ghost' of plugin 'ghostly'"):
            _ = info.obj
        res = cli("plugins", "--check")
        assert res.code == 0
        assert "broken" in res.out and "ghost" in res.out and "No module named 'condensery_no_such_module'" in res.out
    finally:
        reset_registry()


def test_a_reference_without_a_colon_is_refused():
    from condensery import UserError, hookimpl
    from condensery.plugins import build_registry

    class Plugin:
        @staticmethod
        @hookimpl
        def register_matchers(register):
            register("nocolon", "some.module.Name")

    with pytest.raises(UserError, match="'package.module:Name'"):
        build_registry([("bad", Plugin)])
