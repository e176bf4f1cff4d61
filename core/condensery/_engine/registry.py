"""The registry of components: what each plugin registered, and from which distribution.

A component may be registered as the object itself or, to keep start-up fast, as a
``"package.module:Name"`` reference: ``condensery --help``, ``plugins`` and a recipe that
names an unknown component then never import torch. The reference is imported the first
time the component is used (``ComponentInfo.obj``).

A registration may also name the component's options class, ``register("pixel",
"condensery_matching.pixel:PixelSynthesizer", options="condensery_matching.options:PixelOptions")``,
kept in a module that imports no torch: a recipe then validates every section against those
classes (``ComponentInfo.options_class``) before any component module is imported, and a bad
option *value* fails as fast as an unknown name. Without ``options`` the component is
imported and its ``Options`` read. ``ComponentInfo.check`` (``condensery plugins
--check``, and every recipe that builds the component) refuses a declaration that is not the
component's own ``Options``.

Loading the plugins into a registry is ``condensery._engine.plugins``.
"""

from __future__ import annotations

import importlib
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from ..api.errors import CondenseryError, UserError

KINDS = ("synthesizer", "matcher", "evaluator", "generator", "dataset", "model")
_HOOK_OF_KIND = {kind: f"register_{kind}s" for kind in KINDS}


@dataclass(frozen=True)
class ComponentInfo:
    """A registered component and where it came from.

    ``target`` is what the plugin registered: the object, or a ``"module:Name"`` reference
    that ``obj`` imports on first use. ``options`` is the options class it declared (the
    class or a reference), None when it declared none.
    """

    kind: str
    name: str
    target: Any
    plugin: str
    distribution: str
    version: str
    options: Any = None
    _loaded: list[Any] = field(default_factory=list, compare=False, repr=False)
    _options_loaded: list[Any] = field(default_factory=list, compare=False, repr=False)

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

    @property
    def options_class(self) -> Any:
        """The options a recipe section for this component is validated against.

        The declared class (a reference imports only its own module, no component code), else
        the component's ``Options`` (which imports the component); None for a model factory
        that declares none (its keys then go to the factory unchecked).
        """
        if self.options is None:
            return getattr(self.obj, "Options", None)
        if not isinstance(self.options, str):
            return self.options
        if not self._options_loaded:
            self._options_loaded.append(resolve_reference(self.options, self))
        return self._options_loaded[0]

    def check(self) -> Any:
        """Import the component and check that its declared options are its own ``Options``.

        Returns the component; a declaration that differs from the component's ``Options``
        (or, for a synthesizer, whose ``uses_matcher`` differs from the class's) is a bug of
        its plugin: a one-line ``PluginLoadError``.
        """
        obj = self.obj
        if self.options is None:
            return obj
        declared = self.options_class
        own = getattr(obj, "Options", None)
        if own is not None and own is not declared:
            raise PluginLoadError(
                f"{self.kind} '{self.name}' of {self.source} is registered with options {_qualname(declared)}, "
                f"but its Options is {_qualname(own)}; fix that plugin's registration")
        said = getattr(declared, "uses_matcher", None) if self.kind == "synthesizer" else None
        if said is not None and bool(said) != bool(getattr(obj, "uses_matcher", False)):
            raise PluginLoadError(
                f"synthesizer '{self.name}' of {self.source}: its options say uses_matcher={said}, the class says "
                f"{getattr(obj, 'uses_matcher', False)}; fix that plugin")
        return obj

    def build(self, options: Any = None, where: str | None = None) -> Any:
        """The component built from ``options`` and named as registered (``component.name``).

        ``options`` is its validated options object, or a mapping validated here (one
        ``UserError`` line on a bad key or value, naming ``where``); None takes the defaults.
        Every component a recipe names is built here, so a copy registered under another name
        reports that name.
        """
        from ..api.options import Options, validate_options

        cls = self.check()
        if not isinstance(options, Options):
            options = validate_options(self.options_class, dict(options or {}), where or f"{self.kind} '{self.name}'")
        component = cls(options)
        component.name = self.name
        return component


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


class PluginLoadError(CondenseryError):
    """A component's registered reference does not import, or its declared options are not its own:
    a bug or a broken install of its plugin."""


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
            from ..api.options import suggest  # pydantic: only when a name is wrong

            valid = sorted(table)
            hint = suggest(name, valid)
            raise UserError(
                f"unknown {kind} '{name}'{hint}; valid {kind}s: {', '.join(valid) or '(none)'}"
            )
        return table[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def name_of(self, kind: str, cls: type) -> str:
        """The one name ``cls`` is registered under as a ``kind`` (a generator saving its folder).

        A reference naming ``cls``'s own module is matched without importing anything else;
        otherwise registered components are imported to compare (broken ones skipped). No
        name, or several, is a bug of ``cls``'s plugin: a one-line ``PluginLoadError``.
        """
        own = f"{cls.__module__}:{cls.__qualname__}"
        table = self.components[kind]
        found = [name for name, info in table.items() if info.target is cls or info.target == own]
        if not found:
            for name, info in table.items():
                try:
                    if info.obj is cls:
                        found.append(name)
                except PluginLoadError:
                    continue
        if len(found) != 1:
            how = f"under several names ({', '.join(sorted(found))})" if found else "under no name"
            raise PluginLoadError(f"{kind} class {own} is registered {how}; register it once with register_{kind}s")
        return found[0]

    def all(self) -> list[ComponentInfo]:
        return [info for kind in KINDS for _, info in sorted(self.components[kind].items())]

    # -- registration -----------------------------------------------------------
    def add(self, kind: str, name: str, obj: Any, plugin: str, options: Any = None) -> None:
        dist, version = self._dist_of_plugin.get(plugin, ("(unknown)", ""))
        if not isinstance(name, str) or not name:
            raise UserError(f"plugin '{plugin}' registered a {kind} with an empty or non-text name")
        for what, ref in (("as", obj), ("with options", options)):
            if isinstance(ref, str) and ":" not in ref:
                raise UserError(f"plugin '{plugin}' registered {kind} '{name}' {what} '{ref}'; a reference looks like "
                                "'package.module:Name'")
        existing = self.components[kind].get(name)
        new = ComponentInfo(kind, name, obj, plugin, dist, version, options)
        if existing is not None and existing.target is not obj and existing.target != obj:
            raise UserError(
                f"{kind} '{name}' is registered twice: by {existing.source} and by {new.source}; "
                "uninstall one of them or rename the component"
            )
        self.components[kind][name] = new

    # -- building a model ---------------------------------------------------------
    def build_model(self, spec: dict[str, Any], task: Any) -> Any:
        """A fresh network of ``spec`` (``{"name": ..., **options}``) for the task's shape and classes.

        A registered model's factory, else any timm model by name (the models service's
        ``model_factory``); a factory that rejects the options is one ``UserError`` line.
        """
        opts = {k: v for k, v in spec.items() if k != "name"}
        name = spec.get("name", "convnet")
        c, h, w = task.image_shape
        table = self.components["model"]
        if name in table:
            factory = table[name].obj
        else:
            from ..models.factory import model_factory

            factory = model_factory(name)
        try:
            return factory(num_classes=task.num_classes, in_chans=c, img_size=h, **opts)
        except (TypeError, ValueError) as exc:
            raise UserError(f"model '{name}' cannot be built with options {opts}: {exc}") from None

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
