"""Every capability one component offers another is declared on the core base classes.

(a) No plugin sniffs a component: no ``getattr``/``hasattr`` on a matcher, synthesizer or
evaluator object (nor on ``self`` inside a component class), no ``isinstance``/``issubclass``
against a component class. What a synthesizer may ask of a matcher is declared on
``condensery.Matcher``.
(b) The base classes expose each declared capability with its "not offered" default.
(c) A matcher that does not take support targets refuses ``targets=`` with one clear error.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch
from condensery import Evaluator, Generator, Matcher, Synthesizer

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

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
            if any(COMPONENT_CLASS.search(n) for n in _class_names(node.args[1])):
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_plugin_sniffs_a_component():
    bad = []
    for path in sorted(PLUGINS.rglob("*.py")):
        rel = path.relative_to(PLUGINS).as_posix()
        if rel in SKIP:
            continue
        bad += [f"plugins/{rel}:{line}: {call}" for line, call in sniffs(path.read_text())]
    assert not bad, "declare the capability on the core base class instead:\n" + "\n".join(bad)


@pytest.mark.parametrize("source", [
    'def f(ctx):\n    return getattr(ctx.matcher, "class_separable", False)\n',
    'def f(self, matcher):\n    return hasattr(matcher, "set_warm_start")\n',
    'def f(self):\n    return getattr(self.matcher, "learned_lr", None)\n',
    'def f(ctx):\n    return getattr(ctx.matcher.options, "learn_labels", False)\n',
    'def f(ctx):\n    return isinstance(ctx.matcher, KRRMatcher)\n',
    'def f(m):\n    return isinstance(m, (int, krr.KRRMatcher))\n',
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
    'class Helper:\n    def f(self):\n        return getattr(self, "x", None)\n',
])
def test_the_check_lets_plain_code_pass(source):
    assert sniffs(source) == []


# -- (b) the declared surface -------------------------------------------------------------
MATCHER_DEFAULTS = {
    "class_separable": False,
    "supports_targets": False,
    "solves_labels": False,
    "uses_experts": False,
    "supports_warm_start": False,
}


@pytest.mark.parametrize("name,default", sorted(MATCHER_DEFAULTS.items()))
def test_matcher_declares_each_flag_with_its_default(name, default):
    assert getattr(Matcher, name) is default
    assert name in Matcher.__annotations__  # typed, not just set


class Plain(Matcher):
    def loss(self, images, labels, step):
        return images.sum() * 0.0


def test_matcher_methods_default_to_not_offered():
    m = Plain(Plain.Options())
    assert m.learned_lr() is None
    assert m.learned_labels() is None
    assert m.loss_terms() == {}
    assert m.parameters() == [] and m.state_dict() == {}
    assert m.close() is None
    assert "gen" in Matcher.__annotations__
    for call, flag in [(lambda: m.expert_spec(None), "uses_experts"), (lambda: m.experts_directory(None), "uses_experts"),
                       (lambda: m.use_experts([]), "uses_experts"), (lambda: m.set_warm_start(None), "supports_warm_start"),
                       (lambda: m.solve_labels(None, None, None), "solves_labels")]:
        with pytest.raises(NotImplementedError, match=flag):
            call()
    with pytest.raises(NotImplementedError, match="teacher"):
        m.set_teacher(torch.nn.Linear(1, 1))


def test_other_base_classes_declare_their_flags():
    assert Synthesizer.uses_matcher is False
    assert Evaluator.compares_random is True
    assert callable(Generator.requires_data)


def test_built_in_matchers_declare_what_they_offer():
    from condensery_matching.bnstats import BNStatsMatcher
    from condensery_matching.distribution import DistributionMatcher
    from condensery_matching.gradient import GradientMatcher
    from condensery_matching.krr import KRRMatcher
    from condensery_matching.trajectory import TrajectoryMatcher

    assert GradientMatcher.class_separable and GradientMatcher.supports_warm_start
    assert KRRMatcher.supports_targets and KRRMatcher.solves_labels
    assert TrajectoryMatcher.uses_experts and not TrajectoryMatcher.supports_warm_start
    assert not DistributionMatcher.supports_targets  # class_separable: set in prepare from the model
    for cls in (BNStatsMatcher, DistributionMatcher, GradientMatcher, TrajectoryMatcher):
        assert not cls.supports_targets
    # the methods they offer are their own, not the base's refusal
    assert BNStatsMatcher.set_teacher is not Matcher.set_teacher and BNStatsMatcher.close is not Matcher.close
    assert TrajectoryMatcher.expert_spec is not Matcher.expert_spec
    assert GradientMatcher.set_warm_start is not Matcher.set_warm_start


# -- (c) targets= ----------------------------------------------------------------------
def test_a_matcher_without_targets_refuses_them_with_one_clear_error():
    m = Plain(Plain.Options())
    x, y = torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])
    assert float(m.loss(x, y, 0)) == 0.0
    assert float(m.loss(x, y, 0, targets=None)) == 0.0
    with pytest.raises(TypeError, match=r"Plain takes no support targets \(supports_targets is False\)"):
        m.loss(x, y, 0, targets=torch.zeros(2, 2))


def test_a_matcher_with_targets_receives_them():
    class Takes(Matcher):
        supports_targets = True

        def loss(self, images, labels, step, targets=None):
            return targets.sum()

    out = Takes(Takes.Options()).loss(torch.zeros(1), torch.zeros(1), 0, targets=torch.ones(2, 3))
    assert float(out) == 6.0
