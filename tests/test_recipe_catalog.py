"""Shipped recipes: addressable by name from any directory, listed, shown and copied.

A path wins over a shipped name, an unknown name is one line with the closest names (exit 2),
and the measured result a recipe's ``# measured:`` line carries agrees with the README table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from condensery import UserError
from condensery._engine.recipe_catalog import find_recipe, measured_of, shipped
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def test_every_recipe_file_is_shipped_under_its_path_name():
    on_disk = {p.relative_to(RECIPES).with_suffix("").as_posix() for p in RECIPES.rglob("*.yaml")}
    assert on_disk and set(shipped()) == on_disk
    assert shipped()["digits/dc-ipc1"].read_text() == (RECIPES / "digits" / "dc-ipc1.yaml").read_text()


@pytest.mark.parametrize("arg", ["quickstart", "quickstart.yaml", "recipes/quickstart.yaml", "./recipes/quickstart.yaml"])
def test_a_name_resolves_from_any_directory(arg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_recipe(arg).read_text() == (RECIPES / "quickstart.yaml").read_text()


def test_a_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "recipes" / "quickstart.yaml"
    mine.parent.mkdir()
    mine.write_text("name: mine\n")
    assert find_recipe("recipes/quickstart.yaml") == Path("recipes/quickstart.yaml")
    (tmp_path / "quickstart").write_text("name: mine too\n")
    assert find_recipe("quickstart") == Path("quickstart")


def test_an_unknown_name_is_one_line_with_the_closest_names(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("run", "digits/dc-ipc2")
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "digits/dc-ipc1" in lines[0] and "Traceback" not in res.err
    res = cli("run", "digits-dsa-ipc1")  # the recipe's own `name:` leads to its path name
    assert res.code == 2 and "digits/dsa-ipc1" in res.err


def test_a_folder_is_not_a_recipe(cli):
    res = cli("run", str(RECIPES / "digits"))
    assert res.code == 2 and "is a folder" in res.err and len(res.err.strip().splitlines()) == 1


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_any_name_is_a_file_or_one_user_error(name):
    try:
        path = find_recipe(name)
    except UserError as exc:
        assert len(str(exc).splitlines()) == 1
    else:
        assert path.is_file()


def test_recipes_lists_every_shipped_recipe_with_its_method_and_measured_result(cli):
    res = cli("recipes", "--json")
    assert res.code == 0, res.err
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert set(rows) == set(shipped())
    dc = rows["digits/dc-ipc1"]
    assert (dc["synthesizer"], dc["matcher"], dc["dataset"], dc["ipc"]) == ("pixel", "gradient", "digits", 1)
    assert dc["measured"]["synthetic"] == 85.89 and dc["measured"]["wall_s"] == 111
    table = cli("recipes").out.splitlines()
    assert table[0].split()[:2] == ["name", "synthesizer"]
    line = next(x for x in table if x.startswith("digits/dc-ipc1 "))
    assert "pixel / gradient" in line and "85.89 vs 67.87 %" in line and "111 s" in line


def test_show_prints_the_shipped_file(cli):
    res = cli("recipes", "show", "digits/dc-ipc1")
    assert res.code == 0 and res.out == (RECIPES / "digits" / "dc-ipc1.yaml").read_text()
    res = cli("recipes", "show", "digits/nope")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1


def test_copy_writes_an_editable_copy_and_never_replaces_without_force(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("recipes", "copy", "digits/dc-ipc1")
    assert res.code == 0, res.err
    copy = tmp_path / "dc-ipc1.yaml"
    assert copy.read_text() == (RECIPES / "digits" / "dc-ipc1.yaml").read_text()
    copy.write_text("name: edited\n")
    res = cli("recipes", "copy", "digits/dc-ipc1")
    assert res.code == 2 and "--force" in res.err and copy.read_text() == "name: edited\n"
    assert cli("recipes", "copy", "digits/dc-ipc1", "--force").code == 0
    assert copy.read_text() != "name: edited\n"
    (tmp_path / "mine").mkdir()
    assert cli("recipes", "copy", "quickstart", "mine").code == 0
    assert find_recipe("mine/quickstart.yaml") == Path("mine/quickstart.yaml")


def test_every_measured_line_is_a_mapping_with_numbers():
    for name, path in shipped().items():
        text = path.read_text()
        if "# measured:" not in text:
            continue
        m = measured_of(text)
        assert isinstance(m, dict) and "where" in m, name
        assert set(m) <= {"synthetic", "random", "gain", "networks", "wall_s", "where", "note"}, name
        for key in ("synthetic", "random"):
            assert key not in m or 0 <= m[key] <= 100, name


def test_measured_lines_agree_with_the_readme_table():
    """The README's digits table and the recipes' comments are the same numbers."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### Every digits recipe, measured"):]
    rows = re.findall(r"^\| `([\w-]+)` \|[^|]*\|[^|]*\|[^|]*\| ([\d.]+) \| ([\d.]+) \| ([+−-][\d.]+ \[[^\]]+\])",
                      table, flags=re.M)
    assert len(rows) >= 15
    for name, syn, rnd, gain in rows:
        m = measured_of((RECIPES / "digits" / f"{name}.yaml").read_text())
        assert m is not None, name
        assert (m["synthetic"], m["random"], m["gain"]) == (float(syn), float(rnd), gain), name


def test_recipe_yaml_of_a_listed_recipe_still_parses():
    for path in shipped().values():
        assert isinstance(yaml.safe_load(path.read_text()), dict), path
