"""MGDD's options in sections: strict nested validation, dotted overrides, and the earlier flat
keys failing with one line that names their new key (no torch needed for any of it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from condensery._engine.plugins import get_registry
from condensery._engine.recipe import apply_overrides
from condensery._engine.recipe_validation import validate
from condensery.api.errors import UserError
from condensery_mgdd.options import MGDDOptions

META = Path(__file__).resolve().parents[1] / "recipes" / "digits" / "mgdd-meta.yaml"


def meta_doc() -> dict:
    return yaml.safe_load(META.read_text())


def test_dotted_overrides_reach_the_sections_even_ones_the_recipe_leaves_out():
    doc = meta_doc()
    assert "adapt" not in doc["synthesizer"]
    doc = apply_overrides(doc, ["synthesizer.meta.steps=5", "synthesizer.adapt.lr=0.02",
                                "synthesizer.labels.models=3", "synthesizer.architecture.refine_steps=2"])
    o = validate(doc, get_registry()).synthesizer.options
    assert (o.meta.steps, o.adapt.lr, o.labels.models, o.architecture.refine_steps) == (5, 0.02, 3, 2)
    assert o.meta.inner_steps == 2 and o.labels.width == 64  # the recipe's other values stay


@pytest.mark.parametrize("override, expected", [
    ("synthesizer.meta.stepz=5", "synthesizer 'mgdd' has no option 'meta.stepz' (did you mean 'meta.steps'?); "
                                 "valid options of meta: batch, inner_lr, inner_steps, lr, steps, task_ipcs, "
                                 "task_max_classes, task_min_classes"),
    ("synthesizer.adapt.steps=-1", "synthesizer 'mgdd': option 'adapt.steps': Input should be greater than or "
                                   "equal to 0 (got -1)"),
    ("synthesizer.architecture.gradient_input=true", "synthesizer 'mgdd': option 'architecture': Value error, "
                                                     "gradient_input and refine_steps exclude each other"),
])
def test_section_mistakes_are_one_line(override, expected):
    doc = apply_overrides(meta_doc(), [override, "synthesizer.architecture.refine_steps=2"])
    with pytest.raises(UserError) as exc:
        validate(doc, get_registry())
    assert str(exc.value).startswith(expected) and "\n" not in str(exc.value)


def test_every_earlier_flat_key_names_an_existing_new_key():
    assert len(MGDDOptions.renamed) == 27  # every flat key but the top-level ones
    for old, new in MGDDOptions.renamed.items():
        section, key = new.split(".")
        assert key in type(getattr(MGDDOptions(), section)).model_fields, (old, new)
        assert old not in MGDDOptions.model_fields


def test_a_recipe_with_an_earlier_flat_key_exits_2_naming_the_new_key(cli, tmp_path):
    text = META.read_text().replace("  meta:\n    steps: 40\n", "  meta_steps: 40\n  meta:\n")
    assert "meta_steps: 40" in text
    recipe = tmp_path / "old.yaml"
    recipe.write_text(text)
    res = cli("run", str(recipe), "-o", str(tmp_path / "out"), "--quiet")
    assert res.code == 2, res.err
    assert res.err.strip().splitlines() == ["error: synthesizer 'mgdd': option 'meta_steps' is now 'meta.steps'"]
    res = cli("run", str(META), "-o", str(tmp_path / "out"), "--quiet", "--set", "synthesizer.label_width=8")
    assert res.code == 2 and res.err.strip() == "error: synthesizer 'mgdd': option 'label_width' is now 'labels.width'"
    assert not (tmp_path / "out").exists()
