"""The recipes that ship with condensery, addressable by name.

Why: a user who installs condensery from a wheel has no clone and so no ``recipes/`` folder;
the recipes are package data, and ``condensery run quickstart`` or ``digits/dc-ipc1`` must
find them from any directory. A path to a file still works and wins when both exist, so a
user's edited copy (``condensery recipes copy``) is never shadowed by the shipped one.

A recipe records its measured result in one comment line, ``# measured: {...}`` (a YAML
flow mapping: synthetic and random accuracy in %, the gain with its 95 % interval, the
number of networks, the wall time and where the number is documented), so the catalogue can
show it without reading any document that does not ship.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..api.errors import UserError

MEASURED_PREFIX = "# measured:"


def shipped_root() -> Path:
    """The folder of shipped recipes inside the installed package."""
    return Path(str(resources.files("condensery") / "recipes"))


def shipped() -> dict[str, Path]:
    """Every shipped recipe by name: its path under the recipes folder, without ``.yaml``."""
    root = shipped_root()
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in sorted(root.rglob("*.yaml"))}


def _as_name(arg: str) -> str:
    name = arg.replace("\\", "/")
    for prefix in ("./", "recipes/"):
        name = name.removeprefix(prefix)
    return name.removesuffix(".yaml").removesuffix(".yml")


def closest(arg: str, names: dict[str, Path]) -> list[str]:
    """Shipped names near ``arg``, also through each recipe's own ``name:`` (``digits-dc-ipc1``)."""
    by_title = {}
    for name, path in names.items():
        title = _title(path)
        if title:
            by_title[title] = name
    wanted = _as_name(arg)
    near = difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.5)
    near += [by_title[t] for t in difflib.get_close_matches(wanted, list(by_title), n=3, cutoff=0.6)]
    near += [n for n in names if n.rsplit("/", 1)[-1] == wanted.rsplit("/", 1)[-1]]
    return list(dict.fromkeys(near))[:4]


def _title(path: Path) -> str | None:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return doc.get("name") if isinstance(doc, dict) and isinstance(doc.get("name"), str) else None


def find_recipe(arg: str | Path) -> Path:
    """The recipe file ``arg`` names: an existing file, else a shipped recipe's name."""
    path = Path(arg)
    if path.is_file():
        return path
    if path.is_dir():
        raise UserError(f"recipe '{arg}' is a folder; give a .yaml file or a shipped recipe name "
                        "(`condensery recipes` lists them)")
    return shipped_recipe(str(arg))


def shipped_recipe(name: str) -> Path:
    """The shipped recipe ``name``; an unknown name is one ``UserError`` with the closest names."""
    names = shipped()
    found = names.get(_as_name(name))
    if found is not None:
        return found
    near = closest(name, names)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise UserError(f"recipe '{name}' does not exist: no such file, nor a shipped recipe of that name{hint} "
                    "(`condensery recipes` lists the shipped ones)")


@dataclass(frozen=True)
class RecipeEntry:
    """One line of ``condensery recipes``."""

    name: str
    path: Path
    synthesizer: str
    matcher: str | None
    dataset: str
    ipc: int | None
    measured: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "synthesizer": self.synthesizer, "matcher": self.matcher,
                "dataset": self.dataset, "ipc": self.ipc, "measured": self.measured}


def measured_of(text: str) -> dict[str, Any] | None:
    """The ``# measured: {...}`` comment of a recipe's text, or None."""
    for line in text.splitlines():
        if line.startswith(MEASURED_PREFIX):
            value = yaml.safe_load(line[len(MEASURED_PREFIX):])
            return value if isinstance(value, dict) else None
    return None


def entry(name: str, path: Path) -> RecipeEntry:
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    syn = doc.get("synthesizer") or {}
    matcher = syn.get("matcher") or {}
    return RecipeEntry(name=name, path=path, synthesizer=str(syn.get("name", "-")), matcher=matcher.get("name"),
                       dataset=_dataset(doc.get("data") or {}), ipc=syn.get("ipc"), measured=measured_of(text))


def _dataset(data: dict[str, Any]) -> str:
    """The data section's name; a folder-backed source shows its folder too (``imagefolder:cifar10``)."""
    name, root = str(data.get("name", "-")), data.get("root")
    return f"{name}:{Path(str(root)).name}" if root else name


def catalogue() -> list[RecipeEntry]:
    """Every shipped recipe, described."""
    return [entry(name, path) for name, path in shipped().items()]


def summary(measured: dict[str, Any] | None) -> str:
    """``88.91 vs 72.37 % (+16.55 [+14.41, +18.69], 5 nets), 55 s`` or ``-``."""
    if not measured:
        return "-"
    parts = []
    if "synthetic" in measured:
        parts.append(f"{measured['synthetic']:.2f} vs {measured.get('random', float('nan')):.2f} %")
    if "gain" in measured:
        parts.append(f"({measured['gain']}, {measured.get('networks', '?')} nets)")
    if "note" in measured and "synthetic" not in measured:
        parts.append(str(measured["note"]) + ";")
    if "wall_s" in measured:
        parts.append(f"{measured['wall_s']:,} s")
    return " ".join(parts) if parts else "-"
