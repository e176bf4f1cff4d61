"""Typed options for components, validated before any work starts.

Every component declares ``Options``, a pydantic model that forbids unknown keys, so a
typo in a recipe fails with the list of valid options instead of being silently ignored;
so does a typo inside a nested section (an ``Options`` field), and a key an options class
has moved (``Options.renamed``) fails naming where it went. ``SynthesizerOptions`` and
``DatasetOptions`` are what every synthesizer and dataset accepts; like every options module
this one imports no torch, so a recipe is validated before any component is imported.
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError


class Options(BaseModel):
    """Base for component options: unknown keys are errors, values are type-checked."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    #: a key these options no longer take -> the (dotted) key that replaced it, so a recipe
    #: written before the move fails in one line naming the new key instead of a bare "no option"
    renamed: ClassVar[dict[str, str]] = {}


class SynthesizerOptions(Options):
    """Options every synthesizer accepts, on top of its own."""

    #: whether the synthesizer takes the recipe's ``synthesizer.matcher`` (its class's
    #: ``uses_matcher``), stated with the options so that section is checked before the
    #: synthesizer's module is imported; None: only the class says (checked once it is imported)
    uses_matcher: ClassVar[bool | None] = None

    ipc: int = Field(1, ge=1, description="images per class")


class DatasetOptions(Options):
    """Options every dataset accepts, on top of its own."""

    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share of train carved out for validation")
    cache: bool = Field(True, description="cache decoded tensors on disk (file-based datasets)")
    normalize: bool = Field(True, description="standardise each channel with the train mean/std")
    zca: bool = Field(False, description="ZCA-whiten after normalisation (fitted on the train split)")
    zca_eps: float = Field(0.1, gt=0, description="eigenvalue regulariser of the ZCA whitening")
    classes: list[int | str] | None = Field(
        None, description="keep only these classes (indices or names), relabelled 0..k-1 in this order"
    )
    train_per_class: int | None = Field(
        None, ge=1, description="keep at most this many training images per class (first ones, fixed)"
    )


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
