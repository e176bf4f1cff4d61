"""The plugin manager: every component comes from the entry-point group ``condensery``.

Built-in and third-party plugins take the same path. Each plugin's hook implementations
are called one by one so that (a) every component knows which distribution provided it
and (b) a plugin that fails to import or to register is reported with its error without
stopping the others. What a registration holds (references imported on first use, declared
options classes) is ``registry``.

Which plugins load: ``CONDENSERY_LOAD_PLUGINS=a,b`` loads only those entry points (an empty
value loads none), ``CONDENSERY_BLOCK_PLUGINS=a,b`` skips those; names as `condensery plugins`
shows them, and a name no installed plugin has is an error listing the installed ones. A
hook implementation whose name is no hook spec (``register_synthesizer``) is a broken plugin,
listed with the name, rather than silently never called.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import os
from typing import Any

import pluggy

from ..api import hookspecs
from ..api.errors import UserError
from .registry import _HOOK_OF_KIND, BrokenPlugin, Registry, _short_error


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def wanted(plugin: str) -> bool:
    """Whether the environment lets ``plugin`` load (``CONDENSERY_LOAD_PLUGINS`` / ``CONDENSERY_BLOCK_PLUGINS``)."""
    allowed, blocked = _names_from_env("CONDENSERY_LOAD_PLUGINS"), _names_from_env("CONDENSERY_BLOCK_PLUGINS")
    return (allowed is None or plugin in allowed) and plugin not in (blocked or set())


def check_plugin_names(installed: set[str]) -> None:
    """A name in ``CONDENSERY_LOAD_PLUGINS`` / ``CONDENSERY_BLOCK_PLUGINS`` that no installed plugin has
    is a typo that would otherwise load or block nothing, silently: one line with the names there are."""
    for variable in ("CONDENSERY_LOAD_PLUGINS", "CONDENSERY_BLOCK_PLUGINS"):
        unknown = sorted((_names_from_env(variable) or set()) - installed)
        if unknown:
            raise UserError(f"{variable} names {', '.join(map(repr, unknown))}, which no installed plugin is called; "
                            f"installed plugins: {', '.join(sorted(installed)) or 'none'}")


def _load_entry_points(pm: pluggy.PluginManager, registry: Registry) -> None:
    for ep in md.entry_points(group=hookspecs.PROJECT):
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "(unknown)"
        version = ep.dist.version if ep.dist is not None else ""
        if pm.get_plugin(ep.name) is not None or not wanted(ep.name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except (Exception, SystemExit) as exc:  # a broken plugin (even one calling sys.exit) must not stop the others
            registry.broken.append(BrokenPlugin(ep.name, dist, version, _short_error(exc)))
            continue
        registry.note_distribution(ep.name, dist, version)


def _check_hook_names(pm: pluggy.PluginManager, registry: Registry) -> None:
    """A hook implementation with no matching spec is a broken plugin, named with the hook."""
    specs = [name for name in vars(hookspecs) if getattr(getattr(hookspecs, name), "condensery_spec", None)]
    for name, caller in vars(pm.hook).items():
        if name.startswith("_") or caller.spec is not None:
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(name, specs, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            dist, version = registry._dist_of_plugin.get(impl.plugin_name, ("(unknown)", ""))
            registry.broken.append(BrokenPlugin(impl.plugin_name, dist, version,
                                                f"unknown hook '{name}'{hint}: condensery never calls it"))


def _collect(pm: pluggy.PluginManager, registry: Registry) -> None:
    for kind, hook_name in _HOOK_OF_KIND.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin = impl.plugin_name

            def register(name: str, obj: Any, *, options: Any = None, _kind: str = kind, _plugin: str = plugin) -> None:
                registry.add(_kind, name, obj, _plugin, options)

            try:
                impl.function(register=register)
            except UserError:
                raise
            except (Exception, SystemExit) as exc:
                dist, version = registry._dist_of_plugin.get(plugin, ("(unknown)", ""))
                registry.broken.append(BrokenPlugin(plugin, dist, version, _short_error(exc)))


def build_registry(extra_plugins: list[tuple[str, Any]] | None = None) -> Registry:
    """Load every installed plugin (plus ``extra_plugins``, for tests) into a Registry."""
    check_plugin_names({ep.name for ep in md.entry_points(group=hookspecs.PROJECT)}
                       | {name for name, _ in extra_plugins or []})
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm)
    _load_entry_points(pm, registry)
    for name, module in extra_plugins or []:
        pm.register(module, name=name)
        registry.note_distribution(name, "(in-process)", "")
    _check_hook_names(pm, registry)
    _collect(pm, registry)
    return registry


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = build_registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the cached registry (tests install and uninstall plugins)."""
    global _REGISTRY
    _REGISTRY = None
