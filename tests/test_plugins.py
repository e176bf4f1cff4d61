"""Plugin manager: entry points, attribution, broken plugins, duplicates, `condensery plugins`."""

from __future__ import annotations

import json
import types

import pytest
from condensery import Synthesizer, hookimpl
from condensery._engine.plugins import build_registry, get_registry
from condensery._engine.registry import KINDS
from condensery.api.errors import UserError


def _module(name: str, **hooks) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, fn in hooks.items():
        setattr(mod, key, hookimpl(fn))
    return mod


def test_builtins_come_through_the_entry_point_group():
    reg = get_registry()
    for kind, name in [("synthesizer", "pixel"), ("synthesizer", "random"), ("synthesizer", "herding"),
                       ("synthesizer", "kcenter"), ("matcher", "distribution"), ("evaluator", "hard-label"),
                       ("dataset", "digits"), ("dataset", "imagefolder"), ("model", "convnet")]:
        info = reg.get(kind, name)
        assert info.distribution == "condensery"
        assert info.version
    assert {p for p in reg.pm.list_name_plugin()} >= {("core", reg.pm.get_plugin("core"))}


def test_unknown_component_lists_valid_names():
    with pytest.raises(UserError) as exc:
        get_registry().get("synthesizer", "pixl")
    msg = str(exc.value)
    assert "unknown synthesizer 'pixl'" in msg and "did you mean 'pixel'" in msg and "random" in msg


def test_broken_plugin_is_reported_and_others_still_load():
    def register_synthesizers(register):
        raise RuntimeError("boom in plugin")

    reg = build_registry(extra_plugins=[("broken-one", _module("broken_one", register_synthesizers=register_synthesizers))])
    assert [b.plugin for b in reg.broken] == ["broken-one"]
    assert "RuntimeError: boom in plugin" in reg.broken[0].error
    assert "pixel" in reg.names("synthesizer")


def test_duplicate_component_names_both_sources():
    class Other(Synthesizer):
        pass

    def register_synthesizers(register):
        register("pixel", Other)

    with pytest.raises(UserError) as exc:
        build_registry(extra_plugins=[("dupe", _module("dupe", register_synthesizers=register_synthesizers))])
    msg = str(exc.value)
    assert "synthesizer 'pixel' is registered twice" in msg
    assert "plugin 'matching' from condensery" in msg and "plugin 'dupe'" in msg


def test_plugins_json_lists_every_kind(cli):
    res = cli("plugins", "--json")
    assert res.code == 0
    rows = json.loads(res.out)
    assert all(set(r) >= {"kind", "name", "distribution", "version"} for r in rows)
    assert {r["kind"] for r in rows} >= set(KINDS)
    assert {"kind": "synthesizer", "name": "pixel"}.items() <= next(r for r in rows if r["name"] == "pixel").items()


def test_plugins_table(cli):
    res = cli("plugins")
    assert res.code == 0
    assert any(line.split()[:2] == ["matcher", "distribution"] for line in res.out.splitlines())


def test_broken_plugin_shows_in_plugins_json(cli, monkeypatch):
    import condensery._engine.plugins as plugins

    def register_matchers(register):
        raise ImportError("missing dependency xyz")

    reg = build_registry(extra_plugins=[("bad", _module("bad", register_matchers=register_matchers))])
    monkeypatch.setattr(plugins, "_REGISTRY", reg)
    rows = json.loads(cli("plugins", "--json").out)
    broken = [r for r in rows if r["kind"] == "broken"]
    assert broken and broken[0]["name"] == "bad" and "missing dependency xyz" in broken[0]["error"]


def test_every_builtin_declares_its_options_and_they_are_the_components_own():
    """The options a recipe is validated against (no torch) are the very classes the components use."""
    from condensery.api.options import Options

    checked = 0
    for info in get_registry().all():
        if info.distribution != "condensery" or info.kind == "generator":
            continue
        assert isinstance(info.options, str) and ":" in info.options, (info.kind, info.name, info.options)
        declared = info.options_class
        assert isinstance(declared, type) and issubclass(declared, Options), info.name
        obj = info.check()  # imports the component; a declaration that is not its Options raises
        own = getattr(obj, "Options", None)
        assert own is None or own is declared, (info.kind, info.name)
        if info.kind != "model":
            assert own is declared, (info.kind, info.name)
        if info.kind == "synthesizer":  # declared with the options so the matcher section is checked without torch
            assert declared.uses_matcher is not None and declared.uses_matcher == obj.uses_matcher, info.name
        checked += 1
    assert checked >= 25


def test_declared_options_that_are_not_the_components_own_are_a_plugin_bug(cli, tmp_path):
    import condensery._engine.plugins as plugins_module
    from condensery._engine.plugins import reset_registry
    from condensery._engine.recipe import resolve
    from condensery._engine.recipe_validation import validate
    from condensery._engine.registry import PluginLoadError

    def register_synthesizers(register):
        register("mismatched", "condensery_matching.pixel:PixelSynthesizer",
                 options="condensery_matching.options:MultisizeOptions")

    plugins_module._REGISTRY = build_registry([("mismatch", _module("mismatch", register_synthesizers=register_synthesizers))])
    try:
        doc = {"name": "m", "data": {"name": "digits"},
               "synthesizer": {"name": "mismatched", "ipc": 1, "matcher": {"name": "distribution"}}}
        validate(doc, plugins_module._REGISTRY)  # the declared options validate the section ...
        with pytest.raises(PluginLoadError, match="synthesizer 'mismatched' of plugin 'mismatch'.*registered with "
                                                  "options condensery_matching.options:MultisizeOptions.*its Options is "
                                                  "condensery_matching.options:PixelOptions"):
            resolve(doc, plugins_module._REGISTRY)  # ... and building it refuses the mismatch, naming the plugin
        res = cli("plugins", "--check")
        assert res.code == 0
        [line] = [x for x in res.out.splitlines() if x.startswith("broken")]
        assert "mismatched" in line and "MultisizeOptions" in line and "fix that plugin's registration" in line
    finally:
        reset_registry()


def test_a_component_registered_without_options_still_validates_through_its_class():
    """Declaring options is optional: without them the component is imported and its ``Options`` read."""
    from condensery import SynthesizerOptions
    from condensery._engine.recipe import resolve
    from pydantic import Field

    class OwnOptions(SynthesizerOptions):
        steps: int = Field(3, ge=1)

    class Own(Synthesizer):
        Options = OwnOptions

    def register_synthesizers(register):
        register("own", Own)

    reg = build_registry([("own", _module("own", register_synthesizers=register_synthesizers))])
    doc = {"name": "o", "data": {"name": "digits"}, "synthesizer": {"name": "own", "ipc": 2, "steps": 5}}
    plan = resolve(doc, reg)
    assert plan.synthesizer.options.steps == 5 and plan.matcher is None
    with pytest.raises(UserError, match="synthesizer 'own': option 'steps'"):
        resolve({**doc, "synthesizer": {"name": "own", "steps": 0}}, reg)
    with pytest.raises(UserError, match="takes no matcher"):
        resolve({**doc, "synthesizer": {"name": "own", "matcher": {"name": "distribution"}}}, reg)


def test_an_options_reference_without_a_colon_is_refused():
    def register_matchers(register):
        register("nocolon", "some.module:Name", options="some.module.Options")

    with pytest.raises(UserError, match="with options 'some.module.Options'; a reference looks like"):
        build_registry([("bad", _module("bad", register_matchers=register_matchers))])


def test_a_matcher_the_options_do_not_declare_is_checked_once_the_class_is_imported():
    from condensery import SynthesizerOptions
    from condensery._engine.recipe import resolve
    from condensery._engine.recipe_validation import validate

    class WantsMatcher(Synthesizer):
        Options = SynthesizerOptions  # its uses_matcher is None: only the class knows
        uses_matcher = True

    def register_synthesizers(register):
        register("wants", WantsMatcher, options=SynthesizerOptions)

    reg = build_registry([("wants", _module("wants", register_synthesizers=register_synthesizers))])
    doc = {"name": "w", "data": {"name": "digits"}, "synthesizer": {"name": "wants", "ipc": 1}}
    assert validate(doc, reg).uses_matcher is None
    with pytest.raises(UserError, match="synthesizer 'wants' needs a 'matcher' section"):
        resolve(doc, reg)
    plan = resolve({**doc, "synthesizer": {"name": "wants", "matcher": {"name": "distribution", "batch_real": 4}}}, reg)
    assert plan.matcher_name == "distribution" and plan.resolved["synthesizer"]["matcher"]["batch_real"] == 4
