"""The plugin manager: misspelt hooks, command clashes, and choosing which plugins load."""

from __future__ import annotations

import click
import pytest
from condensery import UserError, hookimpl
from condensery._engine.plugins import build_registry


class Misspelt:
    @staticmethod
    @hookimpl
    def register_synthesizer(register):  # the spec is register_synthesizers
        raise AssertionError("never called")

    @staticmethod
    @hookimpl
    def register_matchers(register):
        register("still-works", "condensery_matching.distribution:DistributionMatcher")


def test_a_misspelt_hook_is_a_broken_plugin_named_with_the_hook():
    registry = build_registry([("misspelt", Misspelt)])
    (broken,) = [b for b in registry.broken if b.plugin == "misspelt"]
    assert "unknown hook 'register_synthesizer'" in broken.error
    assert "did you mean 'register_synthesizers'" in broken.error
    assert "still-works" in registry.names("matcher")  # its correct hooks still count


def test_two_plugins_adding_one_command_is_an_error_naming_both(monkeypatch):
    from condensery._engine import cli as cli_module

    def adder(text):
        @click.command("hello")
        def hello():
            click.echo(text)

        class Plugin:
            @staticmethod
            @hookimpl
            def register_commands(cli):
                cli.add_command(hello)

        return Plugin

    registry = build_registry([("first", adder("1")), ("second", adder("2"))])
    monkeypatch.setattr(cli_module, "get_registry", lambda: registry)
    group = click.Group(commands=dict(cli_module.cli.commands))  # a fresh group: the module's stays clean
    monkeypatch.setattr(cli_module, "cli", group)
    with pytest.raises(UserError, match="command 'hello' is added by two plugins, 'first' and 'second'"):
        cli_module.build_cli()


def test_a_plugin_cannot_take_over_a_core_command(monkeypatch):
    from condensery._engine import cli as cli_module

    class Plugin:
        @staticmethod
        @hookimpl
        def register_commands(cli):
            cli.add_command(click.Command("run"))

    registry = build_registry([("greedy", Plugin)])
    monkeypatch.setattr(cli_module, "get_registry", lambda: registry)
    monkeypatch.setattr(cli_module, "cli", click.Group(commands=dict(cli_module.cli.commands)))
    with pytest.raises(UserError, match="'condensery' and 'greedy'"):
        cli_module.build_cli()


def test_block_and_load_lists_choose_the_entry_points(monkeypatch):
    monkeypatch.setenv("CONDENSERY_BLOCK_PLUGINS", "dwa, seqmatch")
    names = build_registry().names("synthesizer")
    assert "dwa" not in names and "seqmatch" not in names and "pixel" in names

    monkeypatch.delenv("CONDENSERY_BLOCK_PLUGINS")
    monkeypatch.setenv("CONDENSERY_LOAD_PLUGINS", "core,matching")
    registry = build_registry()
    assert registry.names("synthesizer") == ["multisize", "pixel"]
    assert "digits" in registry.names("dataset") and registry.names("evaluator") == []

    monkeypatch.setenv("CONDENSERY_LOAD_PLUGINS", "")
    assert build_registry().all() == []  # an empty allow-list loads nothing


def test_blocking_is_visible_from_the_command_line(cli, monkeypatch):
    from condensery._engine.plugins import reset_registry

    monkeypatch.setenv("CONDENSERY_BLOCK_PLUGINS", "dwa")
    reset_registry()
    try:
        res = cli("plugins")
        assert res.code == 0 and "dwa " not in res.out and "pixel" in res.out
    finally:
        monkeypatch.delenv("CONDENSERY_BLOCK_PLUGINS")
        reset_registry()
