"""Plugin manager: entry points, attribution, broken plugins, duplicates, `condensery plugins`."""

from __future__ import annotations

import json
import types

import pytest
from condensery import Synthesizer, hookimpl
from condensery.errors import UserError
from condensery.plugins import KINDS, build_registry, get_registry


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
    import condensery.plugins as plugins

    def register_matchers(register):
        raise ImportError("missing dependency xyz")

    reg = build_registry(extra_plugins=[("bad", _module("bad", register_matchers=register_matchers))])
    monkeypatch.setattr(plugins, "_REGISTRY", reg)
    rows = json.loads(cli("plugins", "--json").out)
    broken = [r for r in rows if r["kind"] == "broken"]
    assert broken and broken[0]["name"] == "bad" and "missing dependency xyz" in broken[0]["error"]
