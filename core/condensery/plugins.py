"""The plugin manager: every component comes from the entry-point group ``condensery``.

Built-in and third-party plugins take the same path. Each plugin's hook implementations
are called one by one so that (a) every component knows which distribution provided it
and (b) a plugin that fails to import or to register is reported with its error without
stopping the others.

A component may be registered as the object itself or, to keep start-up fast, as a
``"package.module:Name"`` reference: ``condensery --help``, ``plugins`` and a recipe that
names an unknown component then never import torch. The reference is imported the first
time the component is used (``ComponentInfo.obj``).

Which plugins load: ``CONDENSERY_LOAD_PLUGINS=a,b`` loads only those entry points (an empty
value loads none), ``CONDENSERY_BLOCK_PLUGINS=a,b`` skips those; names as `condensery plugins`
shows them. A hook implementation whose name is no hook spec (``register_synthesizer``) is a
broken plugin, listed with the name, rather than silently never called.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import CondenseryError, UserError

KINDS = ("synthesizer", "matcher", "evaluator", "generator", "dataset", "model")
_HOOK_OF_KIND = {kind: f"register_{kind}s" for kind in KINDS}


@dataclass(frozen=True)
class ComponentInfo:
    """A registered component and where it came from.

    ``target`` is what the plugin registered: the object, or a ``"module:Name"`` reference
    that ``obj`` imports on first use.
    """

    kind: str
    name: str
    target: Any
    plugin: str
    distribution: str
    version: str
    _loaded: list[Any] = field(default_factory=list, compare=False, repr=False)

    @property
    def source(self) -> str:
        return f"plugin '{self.plugin}' from {self.distribution} {self.version}"

    @property
    def obj(self) -> Any:
        """The component itself (a reference is imported once, here)."""
        if not isinstance(self.target, str):
            return self.target
        if not self._loaded:
            self._loaded.append(resolve_reference(self.target, self))
        return self._loaded[0]


class PluginLoadError(CondenseryError):
    """A component's registered reference does not import: a bug or a broken install of its plugin."""


def resolve_reference(reference: str, info: ComponentInfo | None = None) -> Any:
    """``"package.module:Name"`` -> the object, or a one-line ``PluginLoadError`` naming the plugin."""
    module_name, _, attr = reference.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else []:
            value = getattr(value, part)
    except (Exception, SystemExit) as exc:
        who = f"{info.kind} '{info.name}' of {info.source}" if info else f"'{reference}'"
        raise PluginLoadError(f"{who} failed to load ({reference}): {_short_error(exc)}; "
                              "reinstall or fix that plugin") from exc
    return value


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded or registered, with the reason."""

    plugin: str
    distribution: str
    version: str
    error: str


class Registry:
    """All components by kind and name, plus the plugins that failed to load."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.components: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in KINDS}
        self.broken: list[BrokenPlugin] = []
        self._dist_of_plugin: dict[str, tuple[str, str]] = {}

    # -- lookup -----------------------------------------------------------------
    def get(self, kind: str, name: str) -> ComponentInfo:
        """The component ``name`` of ``kind``, or a ``UserError`` listing the valid names."""
        table = self.components[kind]
        if name not in table:
            from .options import suggest  # pydantic: only when a name is wrong

            valid = sorted(table)
            hint = suggest(name, valid)
            raise UserError(
                f"unknown {kind} '{name}'{hint}; valid {kind}s: {', '.join(valid) or '(none)'}"
            )
        return table[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def all(self) -> list[ComponentInfo]:
        return [info for kind in KINDS for _, info in sorted(self.components[kind].items())]

    # -- registration -----------------------------------------------------------
    def add(self, kind: str, name: str, obj: Any, plugin: str) -> None:
        dist, version = self._dist_of_plugin.get(plugin, ("(unknown)", ""))
        if not isinstance(name, str) or not name:
            raise UserError(f"plugin '{plugin}' registered a {kind} with an empty or non-text name")
        if isinstance(obj, str) and ":" not in obj:
            raise UserError(f"plugin '{plugin}' registered {kind} '{name}' as '{obj}'; a reference looks like "
                            "'package.module:Name'")
        existing = self.components[kind].get(name)
        new = ComponentInfo(kind, name, obj, plugin, dist, version)
        if existing is not None and existing.target is not obj and existing.target != obj:
            raise UserError(
                f"{kind} '{name}' is registered twice: by {existing.source} and by {new.source}; "
                "uninstall one of them or rename the component"
            )
        self.components[kind][name] = new

    def note_distribution(self, plugin: str, dist: str, version: str) -> None:
        self._dist_of_plugin[plugin] = (dist, version)

    def blame(self, exc: BaseException) -> tuple[str, str, str] | None:
        """(plugin, distribution, version) whose code raised ``exc`` (its innermost frame in a
        plugin's package), or None when no plugin's code is on the traceback."""
        packages = {}
        for name, module in self.pm.list_name_plugin():
            top = getattr(module, "__name__", "").split(".")[0]
            if top and top != "condensery":
                packages[top] = name
        tb, found = exc.__traceback__, None
        while tb is not None:
            top = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
            if top in packages:
                found = packages[top]
            tb = tb.tb_next
        if found is None:
            return None
        dist, version = self._dist_of_plugin.get(found, ("(unknown)", ""))
        return found, dist, version


def _short_error(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({frame[0].filename}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def wanted(plugin: str) -> bool:
    """Whether the environment lets ``plugin`` load (``CONDENSERY_LOAD_PLUGINS`` / ``CONDENSERY_BLOCK_PLUGINS``)."""
    allowed, blocked = _names_from_env("CONDENSERY_LOAD_PLUGINS"), _names_from_env("CONDENSERY_BLOCK_PLUGINS")
    return (allowed is None or plugin in allowed) and plugin not in (blocked or set())


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

            def register(name: str, obj: Any, _kind: str = kind, _plugin: str = plugin) -> None:
                registry.add(_kind, name, obj, _plugin)

            try:
                impl.function(register=register)
            except UserError:
                raise
            except (Exception, SystemExit) as exc:
                dist, version = registry._dist_of_plugin.get(plugin, ("(unknown)", ""))
                registry.broken.append(BrokenPlugin(plugin, dist, version, _short_error(exc)))


def build_registry(extra_plugins: list[tuple[str, Any]] | None = None) -> Registry:
    """Load every installed plugin (plus ``extra_plugins``, for tests) into a Registry."""
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
