"""Typed options for components, validated before any work starts.

Every component declares ``Options``, a pydantic model that forbids unknown keys, so a
typo in a recipe fails with the list of valid options instead of being silently ignored.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UserError


class Options(BaseModel):
    """Base for component options: unknown keys are errors, values are type-checked."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def suggest(name: str, valid: list[str]) -> str:
    """A short 'did you mean' hint, or an empty string."""
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validate_options(options_cls: type[Options], values: dict[str, Any], where: str) -> Options:
    """Build ``options_cls`` from ``values``; any problem becomes a one-line ``UserError``.

    ``where`` names the recipe section (e.g. ``synthesizer 'pixel'``) so the message says
    exactly which key is wrong and why.
    """
    valid = sorted(options_cls.model_fields)
    for key in values:
        if key not in options_cls.model_fields:
            raise UserError(
                f"{where} has no option '{key}'{suggest(key, valid)}; "
                f"valid options: {', '.join(valid) or '(none)'}"
            )
    try:
        return options_cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(options)"
        got = err.get("input")
        shown = f" (got {got!r})" if not isinstance(got, dict) else ""
        raise UserError(f"{where}: option '{key}': {err['msg']}{shown}") from None
