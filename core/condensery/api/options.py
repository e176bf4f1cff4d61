"""Typed options for components, validated before any work starts.

Every component declares ``Options``, a pydantic model that forbids unknown keys, so a
typo in a recipe fails with the list of valid options instead of being silently ignored;
so does a typo inside a nested section (an ``Options`` field), and a key an options class
has moved (``Options.renamed``) fails naming where it went.
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UserError


class Options(BaseModel):
    """Base for component options: unknown keys are errors, values are type-checked."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    #: a key these options no longer take -> the (dotted) key that replaced it, so a recipe
    #: written before the move fails in one line naming the new key instead of a bare "no option"
    renamed: ClassVar[dict[str, str]] = {}


def suggest(name: str, valid: list[str], prefix: str = "") -> str:
    """A short 'did you mean' hint, or an empty string; ``prefix`` is put before the name it suggests."""
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def validate_options(options_cls: type[Options], values: dict[str, Any], where: str) -> Options:
    """Build ``options_cls`` from ``values``; any problem becomes a one-line ``UserError``.

    ``where`` names the recipe section (e.g. ``synthesizer 'pixel'``) so the message says
    exactly which key is wrong and why.
    """
    _check_keys(options_cls, values, where)
    try:
        return options_cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(options)"
        got = err.get("input")
        shown = f" (got {got!r})" if not isinstance(got, dict) else ""
        raise UserError(f"{where}: option '{key}': {err['msg']}{shown}") from None


def _check_keys(options_cls: type[BaseModel], values: dict[str, Any], where: str, prefix: str = "") -> None:
    """Every key of ``values`` is an option of ``options_cls``, in nested sections too.

    A key the class has moved names its new key; an unknown one lists the valid ones (of its
    section, ``prefix`` being the dotted path to it).
    """
    fields = options_cls.model_fields
    valid = sorted(fields)
    for key, value in values.items():
        moved = getattr(options_cls, "renamed", {}).get(key)
        if moved is not None:
            raise UserError(f"{where}: option '{prefix}{key}' is now '{prefix}{moved}'")
        if key not in fields:
            section = f" of {prefix[:-1]}" if prefix else ""
            raise UserError(f"{where} has no option '{prefix}{key}'{suggest(key, valid, prefix)}; "
                            f"valid options{section}: {', '.join(valid) or '(none)'}")
        nested = fields[key].annotation
        if isinstance(nested, type) and issubclass(nested, Options) and isinstance(value, dict):
            _check_keys(nested, value, where, f"{prefix}{key}.")
