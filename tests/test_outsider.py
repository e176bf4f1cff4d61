"""The outsider test: a third-party plugin written from docs/writing-plugins.md alone.

``tests/outsider_plugin`` (distribution ``condensery-outsider``) has one component of every
kind: a matcher offering a capability no built-in declares (``ClassFocus``, its own
Protocol), a synthesizer that requires it, a copy of the smallest built-in evaluator
registered under another name, and a generator type. It is pip-installed into a folder of
its own (``--target``, put on PYTHONPATH) and run through the CLI; the core knows nothing
of it. Its files are the code blocks of the guide, so guide and package cannot drift apart.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .test_public_imports import imports_of, plugin_packages, violations

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).resolve().parent / "outsider_plugin"
GUIDE = REPO / "docs" / "writing-plugins.md"
#: every name the outsider registers or defines, none of which the core may mention
OUTSIDER_NAMES = ("outsider", "class-by-class", "mean-match", "hard-label-copy", "class-means", "ClassFocus",
                  "ClassMeans", "MeanMatcher", "HardLabelCopy", "ClassByClass")

#: a code block the guide introduces with the file it is: `condensery_outsider/x.py`:
BLOCK = re.compile(r"^`([\w/.]+)`:\n\n```\w*\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)

RECIPE = """
name: outsider
seed: 0
data: {name: digits}
model: {name: convnet, depth: 2, width: 8}
synthesizer:
  name: class-by-class
  ipc: 1
  steps: 3
  matcher: {name: mean-match, batch_real: 8}
evaluators:
  - {name: hard-label-copy, runs: 1, epochs: 1}
  - {name: hard-label, runs: 1, epochs: 1}
runtime: {threads: 1}
"""


def package_files() -> dict[str, str]:
    """Path (relative to the package folder) -> text, of every file the package ships."""
    files = [PACKAGE / "pyproject.toml", *sorted((PACKAGE / "condensery_outsider").glob("*.py"))]
    return {p.relative_to(PACKAGE).as_posix(): p.read_text() for p in files}


def guide_blocks() -> dict[str, str]:
    """Code blocks of the guide introduced by a line naming their file: ``condensery_outsider/x.py``:"""
    return dict(BLOCK.findall(GUIDE.read_text()))


def test_the_guide_shows_every_file_of_the_package_as_it_is():
    files, blocks = package_files(), guide_blocks()
    assert set(files) <= set(blocks), f"files the guide does not show: {sorted(set(files) - set(blocks))}"
    for path, text in files.items():
        assert blocks[path] == text, f"docs/writing-plugins.md shows another {path}; copy the file into the guide"


def test_the_outsider_uses_only_public_names():
    bad: list[str] = []
    for path, text in package_files().items():
        if path.endswith(".py"):
            bad += violations("condensery_outsider", imports_of(text, path), plugin_packages())
    assert not bad, "\n".join(bad)


def test_its_evaluator_is_the_smallest_built_in_copied():
    """Copying hard-label works only if the built-in keeps no name of its own: the evaluate bodies are equal."""
    def evaluate_of(source: str) -> str:
        tree = ast.parse(source)
        [fn] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "evaluate"]
        return ast.dump(fn)

    built_in = (REPO / "plugins" / "condensery_eval" / "hard_label.py").read_text()
    assert evaluate_of(package_files()["condensery_outsider/evaluator.py"]) == evaluate_of(built_in)
    assert not re.search(r"^\s+name\s*=", built_in, flags=re.MULTILINE)  # the name comes from registration


def test_nothing_in_the_core_knows_the_outsider():
    pattern = re.compile("|".join(re.escape(n) for n in OUTSIDER_NAMES), re.IGNORECASE)
    hits = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in sorted((REPO / "core").rglob("*"))
            if p.is_file() and p.suffix in (".py", ".md", ".toml", ".yaml")
            for m in [pattern.search(p.read_text())] if m]
    assert not hits, hits


def _condensery(*args: str, site: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    paths = [str(site)] if site is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "condensery", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The outsider, pip-installed into a folder of its own (built from a copy: no build/ in tests/)."""
    tmp = tmp_path_factory.mktemp("outsider")
    src = shutil.copytree(PACKAGE, tmp / "src")
    target = tmp / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return target


@pytest.mark.slow
def test_the_pip_installed_outsider_runs_through_the_cli(site, tmp_path):
    listed = _condensery("plugins", "--json", "--check", site=site, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    mine = {(r["kind"], r["name"]) for r in rows if r["distribution"] == "condensery-outsider"}
    assert mine == {("matcher", "mean-match"), ("synthesizer", "class-by-class"),
                    ("evaluator", "hard-label-copy"), ("generator", "class-means")}
    assert not [r for r in rows if r["kind"] == "broken"], rows

    (tmp_path / "outsider.yaml").write_text(RECIPE)
    ran = _condensery("run", "outsider.yaml", "-o", "run", "--quiet", site=site, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["method"], metrics["matcher"]) == ("class-by-class", "mean-match")
    judged = {(r["evaluator"], r["set"]) for r in metrics["results"]}
    assert judged == {(e, s) for e in ("hard-label-copy", "hard-label") for s in ("synthetic", "random")}
    shares = json.loads((tmp_path / "run" / "logs" / "process-0.json").read_text())["shares"]
    assert "hard-label-copy: synthetic runs" in {s["label"] for s in shares}  # the logs carry the name too

    # a matcher without the capability: one line naming the matcher, the capability and who asked
    refused = _condensery("run", "outsider.yaml", "-o", "refused", "--quiet", "--set",
                          "synthesizer.matcher={name: distribution, batch_real: 8}", site=site, cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert ("synthesizer 'class-by-class' needs ClassFocus (focus), which matcher 'distribution' does not offer"
            in refused.stderr), refused.stderr


@pytest.mark.slow
def test_the_outsider_generator_type_generates_with_its_own_options(site, tmp_path):
    from condensery import SyntheticSet

    (tmp_path / "outsider.yaml").write_text(RECIPE)
    ran = _condensery("run", "outsider.yaml", "-o", "run", "--quiet", "--no-eval", site=site, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    config = json.loads((tmp_path / "run" / "generator" / "config.json").read_text())
    assert config["type"] == "class-means"  # from the registration: the plugin never wrote it

    made = _condensery("generate", "run/generator", "--ipc", "3", "--option", "noise=0.5", "-o", "set.safetensors",
                       site=site, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    synset = SyntheticSet.load(tmp_path / "set.safetensors")
    assert synset.images.shape == (30, 1, 8, 8) and synset.metadata["generator_type"] == "class-means"
    assert synset.metadata["generate_options"] == {"noise": 0.5}

    typo = _condensery("generate", "run/generator", "--ipc", "3", "--option", "nois=1", "-o", "x.safetensors",
                       site=site, cwd=tmp_path)
    assert typo.returncode == 2 and "generator type 'class-means' has no option 'nois'" in typo.stderr, typo.stderr
    assert "Traceback" not in typo.stderr and len(typo.stderr.strip().splitlines()) == 1

    gone = _condensery("generate", "run/generator", "--ipc", "3", "-o", "y.safetensors", site=None, cwd=tmp_path)
    assert gone.returncode == 2 and "unknown generator 'class-means'" in gone.stderr, gone.stderr


def test_the_guide_blocks_are_found():
    """A block the pattern missed would go unchecked: it finds one written the way the guide writes them."""
    sample = "`condensery_outsider/x.py`:\n\n```python\nX = 1\n```\n"
    assert BLOCK.findall(sample) == [("condensery_outsider/x.py", "X = 1\n")]
