"""A real third-party plugin: built and pip-installed from a temp dir, listed, run, uninstalled."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

PLUGIN = '''
"""Synthesizer 'class-mean': each synthetic image is the mean of real images of its class."""
import torch
from condensery import Synthesizer, SynthesizerOptions, SyntheticSet, hookimpl


class ClassMean(Synthesizer):
    Options = SynthesizerOptions

    def synthesize(self, ctx):
        k, ipc = ctx.task.num_classes, self.options.ipc
        means = torch.stack([ctx.data.train_x[ctx.data.class_indices[c]].mean(0) for c in range(k)])
        images = means.repeat_interleave(ipc, dim=0)
        labels = torch.arange(k, device=images.device).repeat_interleave(ipc)
        return SyntheticSet(images, labels)


@hookimpl
def register_synthesizers(register):
    register("class-mean", ClassMean)
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "condensery-classmean"
version = "0.3.1"
dependencies = ["condensery"]

[project.entry-points.condensery]
classmean = "condensery_classmean"

[tool.setuptools]
py-modules = ["condensery_classmean"]
'''

RECIPE = """
name: classmean
data: {name: digits}
model: {name: convnet, width: 16}
synthesizer: {name: class-mean, ipc: 1}
evaluators: [{name: hard-label, runs: 1, epochs: 5}]
"""


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


def _condensery(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "condensery", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.slow
def test_pip_installed_plugin_is_listed_and_runs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "condensery_classmean.py").write_text(textwrap.dedent(PLUGIN))
    installed = _pip("install", "--no-build-isolation", "--no-index", "--no-deps", "-q", str(src))
    assert installed.returncode == 0, installed.stderr
    try:
        listed = _condensery("plugins", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        row = next(r for r in rows if r["name"] == "class-mean")
        assert row == {"kind": "synthesizer", "name": "class-mean", "distribution": "condensery-classmean",
                       "version": "0.3.1", "plugin": "classmean"}

        (tmp_path / "r.yaml").write_text(RECIPE)
        ran = _condensery("run", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "run"), "--quiet")
        assert ran.returncode == 0, ran.stderr
        metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
        assert metrics["method"] == "class-mean"
        assert {r["set"] for r in metrics["results"]} == {"synthetic", "random"}
    finally:
        removed = _pip("uninstall", "-y", "-q", "condensery-classmean")
        assert removed.returncode == 0, removed.stderr
    after = json.loads(_condensery("plugins", "--json").stdout)
    assert not any(r["name"] == "class-mean" for r in after)


GENERATOR_PLUGIN = '''
"""Generator type 'repeat-means': every generated image of a class is that class's stored mean."""
import torch
from safetensors.torch import save_file
from condensery import Generator, SyntheticSet, hookimpl
from condensery.api.files import read_safetensors


class RepeatMeans(Generator):
    def __init__(self, config, means):
        super().__init__(config)
        self.means = means

    def requires_data(self, ipc, options):
        return False

    def generate(self, ipc, seed=0, ctx=None, options=None):
        k = len(self.means)
        labels = torch.arange(k).repeat_interleave(ipc)
        return SyntheticSet(self.means[labels].clone(), labels)

    def save_weights(self, folder):
        save_file({"means": self.means.contiguous()}, str(folder / "means.safetensors"))
        return {}

    @classmethod
    def load(cls, folder, config):
        tensors, _ = read_safetensors(folder / "means.safetensors")
        return cls(config, tensors["means"])


@hookimpl
def register_generators(register):
    register("repeat-means", RepeatMeans)
'''

GENERATOR_PYPROJECT = PYPROJECT.replace("classmean", "repeatmeans")


@pytest.mark.slow
def test_pip_installed_generator_type_generates_through_the_cli(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(GENERATOR_PYPROJECT))
    (src / "condensery_repeatmeans.py").write_text(textwrap.dedent(GENERATOR_PLUGIN))
    installed = _pip("install", "--no-build-isolation", "--no-index", "--no-deps", "-q", str(src))
    assert installed.returncode == 0, installed.stderr
    try:
        rows = json.loads(_condensery("plugins", "--json").stdout)
        row = next(r for r in rows if r["name"] == "repeat-means")
        assert row["kind"] == "generator" and row["distribution"] == "condensery-repeatmeans"
        # the plugin's class writes its folder through the core's save_generator (diffusers layout)
        write = (
            "import torch, condensery_repeatmeans as m\n"
            "from condensery.generators import save_generator\n"
            "g = m.RepeatMeans({}, torch.arange(10 * 64, dtype=torch.float32).view(10, 1, 8, 8))\n"
            f"save_generator(g, {str(tmp_path / 'gen')!r}, 'repeat-means', "
            "{'task': {'num_classes': 10, 'class_names': [str(i) for i in range(10)]}})\n"
        )
        made = subprocess.run([sys.executable, "-c", write], capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, made.stderr
        out = tmp_path / "set.safetensors"
        ran = _condensery("generate", str(tmp_path / "gen"), "--ipc", "3", "-o", str(out))
        assert ran.returncode == 0, ran.stderr
        from condensery import SyntheticSet

        synset = SyntheticSet.load(out)
        assert synset.images.shape == (30, 1, 8, 8) and synset.metadata["generator_type"] == "repeat-means"
        assert torch.equal(synset.images[3], torch.arange(64, 128, dtype=torch.float32).view(1, 8, 8))
    finally:
        removed = _pip("uninstall", "-y", "-q", "condensery-repeatmeans")
        assert removed.returncode == 0, removed.stderr
    gone = _condensery("generate", str(tmp_path / "gen"), "--ipc", "3", "-o", str(tmp_path / "again.safetensors"))
    assert gone.returncode == 2 and "unknown generator 'repeat-means'" in gone.stderr
