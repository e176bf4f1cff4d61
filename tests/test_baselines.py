"""Coreset baselines: the selection rules do what they claim, and each runs end to end."""

from __future__ import annotations

import json

import pytest
import torch
from condensery import SyntheticSet
from condensery_baselines.selection import herding, kcenter, kmeans


def _cloud(n=200, d=5, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_herding_matches_the_mean_better_than_random():
    f = _cloud()
    picked = herding(f, 10)
    assert len(set(picked.tolist())) == 10
    err_herd = (f[picked].mean(0) - f.mean(0)).norm()
    rand_errs = [(f[torch.randperm(200, generator=torch.Generator().manual_seed(s))[:10]].mean(0) - f.mean(0)).norm() for s in range(20)]
    assert err_herd < min(rand_errs)


def test_kcenter_covers_better_than_random():
    f = _cloud()

    def radius(idx):
        return torch.cdist(f, f[idx]).min(1).values.max()

    picked = kcenter(f, 10)
    assert len(set(picked.tolist())) == 10
    assert radius(picked) < min(radius(torch.randperm(200, generator=torch.Generator().manual_seed(s))[:10]) for s in range(20))


def test_kmeans_finds_separated_clusters():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    f = torch.cat([c + 0.1 * torch.randn(30, 2, generator=torch.Generator().manual_seed(i)) for i, c in enumerate(centers)])
    picked = kmeans(f, 3, torch.Generator().manual_seed(0))
    assert sorted((int(i) // 30) for i in picked) == [0, 1, 2]


@pytest.mark.parametrize("name", ["random", "herding", "kcenter", "kmeans"])
def test_baseline_runs_and_selects_real_images(cli, tmp_path, name):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
name: {name}
data: {{name: digits}}
model: {{name: convnet, width: 16}}
synthesizer: {{name: {name}, ipc: 2}}
evaluators: [{{name: hard-label, runs: 1, epochs: 10}}]
""")
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"), "--quiet")
    assert res.code == 0, res.err
    s = SyntheticSet.load(tmp_path / "run" / "synthetic.safetensors")
    assert s.labels.tolist() == [c for c in range(10) for _ in range(2)]
    from condensery._engine.plugins import get_registry
    from condensery.api.data import RealData
    from condensery.data.realdata import load_raw

    cls = get_registry().get("dataset", "digits").obj
    src = cls(cls.Options())
    data = RealData.from_raw("digits", load_raw("digits", src), 0.1, True)
    idx = torch.tensor(s.metadata["indices"])
    assert torch.allclose(data.train_x[idx], s.images)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["method"] == name
