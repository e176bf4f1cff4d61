"""The options a recipe's ``model`` section may give, typed and checked before torch is imported.

A model spec is ``{name: ..., **options}``. Its options are validated when the recipe
resolves, against the options class the model was registered with
(``register(name, factory, options="module:Class")``, or the factory's ``Options``
attribute), so ``model: {name: convnet, widht: 16}`` is one line naming ``width`` before
any data is loaded or the run directory is touched. The resolved spec keeps exactly the
keys the recipe gave (values coerced to their types): defaults are never written into it,
so a set's stored task and every cache key derived from the spec stay what they were.

Which options a name takes:

* condensery's DD ConvNets (``convnet``, ``convnet_d4``, ``convnet_bn``): ``ConvNetOptions``,
  what ``ConvNet`` accepts (``depth``, ``width``, ``norm``, ``pooling``, ``activation``) plus
  ``small_stem`` (accepted, changes nothing: they are small-image networks);
* a timm network condensery does not define (``resnet18``, registered, or any other timm
  name): ``TimmOptions``, a *declared list* rather than whatever the network's constructor
  happens to take: ``small_stem`` (condensery's stem rule) and the regularisation and pooling
  keywords timm's classification networks share (``drop_rate``, ``drop_path_rate``,
  ``global_pool``). A typo is then one line with the valid keys, like any other option; a
  declared key that one particular network does not take is still refused when it is built
  ("model 'vgg11' rejected its options ..."), before ``recipe.yaml`` is written. Other
  constructor keywords of one timm network are out of reach of a recipe on purpose: register
  a model factory with its own options for them;
* a plugin's model registered with options (``mlp``, ``vgg11_dd``): those options;
* a plugin's model registered without options and whose factory has no ``Options``: its
  keys go to the factory unchecked (a plugin need not declare them).

Whether an unregistered name is a timm model at all can only be asked of timm (torch), so
that check comes after every other section has been validated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from ..api.errors import UserError
from ..api.options import Options, suggest, validate_options

Norm = Literal["instancenorm", "batchnorm", "layernorm", "groupnorm", "none"]
Pool = Literal["avgpooling", "maxpooling", "none"]
Activation = Literal["relu", "leakyrelu", "sigmoid", "gelu"]
#: ``auto``: the family's small-image stem at 64 px or less; true: always; false: timm's stem unchanged
SmallStem = Literal["auto", True, False]


class ConvNetOptions(Options):
    """The DD ConvNet (``condensery.models.ConvNet``): ``depth`` blocks of conv3x3 -> norm -> act -> pool."""

    depth: int = Field(3, ge=1, description="conv blocks")
    width: int = Field(128, ge=1, description="channels of every conv")
    norm: Norm = Field("instancenorm", description="instancenorm is GroupNorm with one group per channel, as in DC/DSA/DM/MTT")
    pooling: Pool = Field("avgpooling", description="2x2 pooling after each block (skipped once the map is 1 px)")
    activation: Activation = "relu"
    small_stem: SmallStem = Field("auto", description="accepted for every model; the DD ConvNets are small-image networks already")


class ConvNetD4Options(ConvNetOptions):
    depth: int = Field(4, ge=1, description="conv blocks (ConvNet-4, for 64x64 data)")


class ConvNetBNOptions(ConvNetOptions):
    norm: Norm = Field("batchnorm", description="batch norm (BN-statistics matching needs running statistics)")


class TimmOptions(Options):
    """A timm network condensery does not define (a declared list of keys, see the module docstring)."""

    small_stem: SmallStem = Field("auto", description="auto: the family's small-image stem at 64 px or less; "
                                                      "true: at any size; false: timm's ImageNet stem unchanged")
    drop_rate: float | None = Field(None, ge=0, lt=1, description="dropout before the classifier (timm's default if unset)")
    drop_path_rate: float | None = Field(None, ge=0, lt=1, description="stochastic depth (networks with residual blocks)")
    global_pool: str | None = Field(None, description="timm's global pooling type, e.g. avg, max, avgmax")


def model_options_class(registry: Any, name: str) -> type[Options] | None:
    """The options ``name``'s spec is validated against; None: its keys go to the factory unchecked.

    Imports only an options module for a model registered with one, and the factory itself
    (to read its ``Options``) for one registered without.
    """
    info = registry.components["model"].get(name)
    if info is None:
        return TimmOptions
    return info.options_class


def validate_model_spec(registry: Any, spec: Any, where: str = "model", check_name: bool = True) -> dict[str, Any]:
    """``spec`` (``{name, **options}``) with its options validated: only the keys given, coerced.

    ``check_name=False`` leaves out the question whether an unregistered name is a timm model
    (it imports timm): ask ``check_model_name`` afterwards.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise UserError(f"recipe section '{where}' needs a 'name' (a registered model or a timm model name)")
    name = spec["name"]
    if check_name:
        check_model_name(registry, name)
    options_cls = model_options_class(registry, name)
    values = {k: v for k, v in spec.items() if k != "name"}
    if options_cls is None:
        return dict(spec)
    options = validate_options(options_cls, values, f"{where} '{name}'")
    return {"name": name, **options.model_dump(mode="json", exclude_unset=True)}


def is_model_name(name: str, registry: Any) -> bool:
    """Whether ``name`` is a registered model or a timm model name (timm is imported only for the latter)."""
    if name in registry.components["model"]:
        return True
    import timm

    from . import convnet  # noqa: F401  (registers the DD ConvNets into timm)

    return bool(timm.is_model(name))


def check_model_name(registry: Any, name: str) -> None:
    """A registered model or a timm name, or one ``UserError`` line with the registered names."""
    if not is_model_name(name, registry):
        valid = registry.names("model")
        raise UserError(
            f"unknown model '{name}'{suggest(name, valid)}; use one of {', '.join(valid)} or any timm model name"
        )


# -- for options validators: model names and specs nested in a component's options -----------
def validated_model_name(name: str | None) -> str | None:
    """A model name given in a component's options (``model: resnet18``), checked like the recipe's.

    For a pydantic ``field_validator``: raises ``ValueError`` (so the recipe error names the
    option) unless the name is registered or a timm model; ``None`` (the task model) passes.
    """
    if name is None:
        return None
    from .._engine.plugins import get_registry

    try:
        check_model_name(get_registry(), name)
    except UserError as exc:
        raise ValueError(str(exc)) from None
    return name


def validated_model_spec(spec: dict[str, Any], where: str = "model") -> dict[str, Any]:
    """A model spec nested in a component's options (``teacher_model: {name: convnet_bn, width: 32}``),
    validated like the recipe's ``model`` section; returns it with only the keys given, coerced.
    For a pydantic ``field_validator``: a problem is a ``ValueError``."""
    from .._engine.plugins import get_registry

    try:
        return validate_model_spec(get_registry(), spec, where)
    except UserError as exc:
        raise ValueError(str(exc)) from None


#: an option naming a network (``model: str | None``): checked like the recipe's model name
ModelName = Annotated[str, AfterValidator(validated_model_name)]
#: an option holding a whole model spec (``{name, **options}``): checked like the recipe's model section
ModelSpec = Annotated[dict[str, Any], AfterValidator(validated_model_spec)]
