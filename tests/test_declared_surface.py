"""What one component asks of another is declared, and checked one way.

(a) No plugin sniffs a component: no ``getattr``/``hasattr`` on a matcher, synthesizer or
evaluator object (nor on ``self`` inside a component class), no ``isinstance``/``issubclass``
on a component object or against a component class. A capability beyond the base class is
a Protocol checked with ``condensery.offers`` / ``condensery.require``.
(b) The ``Matcher`` base holds only what every pixel synthesizer asks of a matcher; each
method's capability is a Protocol its own plugin publishes, and the built-ins offer theirs.
(c) ``require`` names the component, the capability and what asked, in one line; a
capability of a plugin the core has never heard of works the same way.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from condensery import Evaluator, Generator, Matcher, Synthesizer, UserError, offers, require
from condensery.api.capabilities import LabelSolver

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
#: the third-party plugin of tests/test_outsider.py follows the same rule
OUTSIDER = Path(__file__).resolve().parent / "outsider_plugin"

#: a name (or attribute) that holds a component object
COMPONENT_NAME = re.compile(r"(matcher|synthesizer|synth|evaluator|judge)s?$", re.IGNORECASE)
#: a class of a component kind whose objects are handed to other components
COMPONENT_CLASS = re.compile(r"(Matcher|Synthesizer|Evaluator)$")
#: files of other work in progress, checked by their own tests
SKIP = {"condensery_eval/protocol.py"}


def _chain(node: ast.AST) -> list[str]:
    """``ctx.matcher.options`` -> ``["ctx", "matcher", "options"]`` (empty for anything else)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    if isinstance(node, ast.Call):  # type(matcher).x: the object is still the component
        if isinstance(node.func, ast.Name) and node.func.id == "type" and node.args:
            return [*_chain(node.args[0]), *reversed(parts)]
    return []


def _class_names(node: ast.AST) -> list[str]:
    elts = node.elts if isinstance(node, ast.Tuple) else [node]
    return [c[-1] for c in map(_chain, elts) if c]


def sniffs(source: str) -> list[tuple[int, str]]:
    """``(line, call)`` of every capability sniff on a component in ``source``."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    component_classes: list[ast.ClassDef] = [
        c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
        and any(COMPONENT_CLASS.search(n) or n == "Generator" for b in c.bases for n in _class_names(b))
    ]
    inside = {id(n) for c in component_classes for n in ast.walk(c)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
            continue
        fn = node.func.id
        if fn in ("getattr", "hasattr"):
            chain = _chain(node.args[0])
            on_component = any(COMPONENT_NAME.search(part) for part in chain)
            on_self = chain == ["self"] and id(node) in inside
            if on_component or on_self:
                found.append((node.lineno, ast.unparse(node)))
        elif fn in ("isinstance", "issubclass") and len(node.args) == 2:
            on_component = any(COMPONENT_NAME.search(part) for part in _chain(node.args[0]))
            if on_component or any(COMPONENT_CLASS.search(n) for n in _class_names(node.args[1])):
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_plugin_sniffs_a_component():
    bad = []
    for root in (PLUGINS, OUTSIDER):
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in SKIP:
                continue
            bad += [f"{root.name}/{rel}:{line}: {call}" for line, call in sniffs(path.read_text())]
    assert not bad, "declare a capability Protocol and check it with condensery.offers / require:\n" + "\n".join(bad)


@pytest.mark.parametrize("source", [
    'def f(ctx):\n    return getattr(ctx.matcher, "class_separable", False)\n',
    'def f(self, matcher):\n    return hasattr(matcher, "set_warm_start")\n',
    'def f(self):\n    return getattr(self.matcher, "learned_lr", None)\n',
    'def f(ctx):\n    return getattr(ctx.matcher.options, "learn_labels", False)\n',
    'def f(ctx):\n    return isinstance(ctx.matcher, KRRMatcher)\n',
    'def f(m):\n    return isinstance(m, (int, krr.KRRMatcher))\n',
    'def f(ctx):\n    return isinstance(ctx.matcher, TeacherMatching)\n',
    'def f(self, matcher):\n    return isinstance(matcher, WarmStartable)\n',
    'class P(Synthesizer):\n    def f(self):\n        return getattr(self, "_sane", None)\n',
    'class B(Matcher):\n    def f(self):\n        return getattr(self, "recorder", None)\n',
])
def test_the_check_finds_a_sniff(source):
    assert len(sniffs(source)) == 1


def test_the_check_fails_if_the_old_sniff_comes_back():
    source = (PLUGINS / "condensery_matching" / "pixel.py").read_text()
    assert sniffs(source) == []
    reverted = source.replace("ctx.matcher.class_separable", 'getattr(ctx.matcher, "class_separable", False)')
    assert reverted != source
    assert [call for _, call in sniffs(reverted)] == ["getattr(ctx.matcher, 'class_separable', False)"]


@pytest.mark.parametrize("source", [
    'def f(ctx):\n    return ctx.matcher.class_separable\n',
    'def f(self):\n    return getattr(self.options, "model", None)\n',
    'def f(value):\n    return isinstance(value, dict) and getattr(value, "x", 1)\n',
    'def f(model):\n    return isinstance(model, nn.BatchNorm2d)\n',
    'def f(ctx):\n    return offers(ctx.matcher, WarmStartable)\n',
    'class Helper:\n    def f(self):\n        return getattr(self, "x", None)\n',
])
def test_the_check_lets_plain_code_pass(source):
    assert sniffs(source) == []


# -- (b) the declared surface -------------------------------------------------------------
#: what every synthesizer that optimises pixels asks of its matcher, and nothing else
MATCHER_SURFACE = {
    "Options", "name", "class_separable", "gen", "prepare", "parameters", "loss", "after_step",
    "state_dict", "load_state_dict", "subset_losses", "learned_lr", "learned_labels",
}


def test_the_matcher_base_holds_only_what_every_pixel_synthesizer_needs():
    public = {n for n in (*vars(Matcher), *Matcher.__annotations__) if not n.startswith("_")}
    inherited = {n for base in Matcher.__mro__[1:] for n in vars(base) if not n.startswith("_")}
    assert public | inherited == MATCHER_SURFACE
    assert Matcher.class_separable is False and "gen" in Matcher.__annotations__


class Plain(Matcher):
    def loss(self, images, labels, step):
        return images.sum() * 0.0


def test_matcher_methods_default_to_not_offered():
    m = Plain(Plain.Options())
    assert m.learned_lr() is None and m.learned_labels() is None
    assert m.parameters() == [] and m.state_dict() == {}


def test_other_base_classes_declare_their_flags():
    assert Synthesizer.uses_matcher is False
    assert Evaluator.compares_random is True
    assert callable(Generator.requires_data)


def _capabilities():
    from condensery_dwa.capabilities import TeacherMatching
    from condensery_matching.capabilities import ExpertMatching
    from condensery_mgdd.capabilities import TargetMatching
    from condensery_seqmatch.capabilities import WarmStartable

    return TeacherMatching, ExpertMatching, TargetMatching, WarmStartable


def test_built_in_matchers_offer_exactly_their_capabilities():
    from condensery_matching.bnstats import BNStatsMatcher
    from condensery_matching.distribution import DistributionMatcher
    from condensery_matching.gradient import GradientMatcher
    from condensery_matching.krr import KRRMatcher
    from condensery_matching.trajectory import TrajectoryMatcher

    teacher, experts, targets, warm = _capabilities()
    offered = {
        BNStatsMatcher: {teacher}, DistributionMatcher: set(), GradientMatcher: {warm},
        KRRMatcher: {targets, LabelSolver}, TrajectoryMatcher: {experts},
    }
    for cls, caps in offered.items():
        m = cls(cls.Options())
        assert {c for c in (teacher, experts, targets, warm, LabelSolver) if offers(m, c)} == caps, cls.__name__
    assert not any(offers(Plain(Plain.Options()), c) for c in (*_capabilities(), LabelSolver))


def test_every_capability_is_a_documented_runtime_protocol_in_a_public_module():
    import importlib

    for cap in (*_capabilities(), LabelSolver):
        assert cap.__doc__ and cap.__doc__.strip(), cap
        package, _, module = cap.__module__.partition(".")
        if package != "condensery":
            assert module in importlib.import_module(package).PUBLIC_MODULES, cap


# -- (c) one way to check, naming who asked ----------------------------------------------------
def test_require_returns_the_component_or_one_line_naming_it(one_thread):
    from condensery import get_registry

    teacher, *_ = _capabilities()
    bnstats = get_registry().get("matcher", "bnstats").build()
    assert require(bnstats, teacher, "DWA's recover step") is bnstats
    dm = get_registry().get("matcher", "distribution").build({"batch_real": 4})
    with pytest.raises(UserError) as err:
        require(dm, teacher, "DWA's recover step")
    text = str(err.value)
    assert "\n" not in text
    for part in ("matcher 'distribution'", "TeacherMatching (close, loss_terms, set_teacher)", "DWA's recover step"):
        assert part in text, text
    with pytest.raises(UserError, match="none was given"):
        require(None, teacher, "DWA's recover step")


def test_a_new_capability_needs_no_core_change():
    from typing import Protocol, runtime_checkable

    @runtime_checkable
    class Sharpening(Protocol):
        """A capability no plugin of condensery declares."""

        def sharpen(self, amount: float) -> None: ...

    class Sharp(Plain):
        def sharpen(self, amount: float) -> None:
            self.amount = amount

    sharp, plain = Sharp(Sharp.Options()), Plain(Plain.Options())
    sharp.name, plain.name = "sharp", "plain"
    assert offers(sharp, Sharpening) and not offers(plain, Sharpening)
    require(sharp, Sharpening, "a test").sharpen(2.0)
    assert sharp.amount == 2.0
    with pytest.raises(UserError, match=r"a test needs Sharpening \(sharpen\), which matcher 'plain' does not offer"):
        require(plain, Sharpening, "a test")


def test_a_capability_must_be_a_runtime_protocol():
    from typing import Protocol

    class Unchecked(Protocol):
        def sharpen(self) -> None: ...

    with pytest.raises(TypeError, match="Unchecked must be a typing.Protocol decorated with @runtime_checkable"):
        offers(Plain(Plain.Options()), Unchecked)


def test_support_targets_are_a_capability_not_a_loss_keyword():
    from condensery_matching.krr import KRRMatcher

    *_, targets, _ = _capabilities()
    assert "targets" not in inspect.signature(Matcher.loss).parameters
    assert "targets" not in inspect.signature(KRRMatcher.loss).parameters
    assert offers(KRRMatcher(KRRMatcher.Options()), targets)
