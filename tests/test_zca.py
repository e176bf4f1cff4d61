"""ZCA whitening: exact round trip, whitening effect, use by RealData and the run metadata."""

from __future__ import annotations

import torch
from condensery.api.data import RealData
from condensery.api.zca import ZCA
from condensery.data.digits import Digits
from condensery.data.options import DigitsOptions
from condensery.data.realdata import load_raw

torch.set_num_threads(1)


def _images(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 2, 4, 4, generator=g)
    mix = torch.randn(32, 32, generator=g)
    return (base.reshape(n, -1) @ mix).reshape(n, 2, 4, 4)  # correlated features


def test_zca_round_trips():
    x = _images()
    z = ZCA.fit(x, eps=0.1)
    assert torch.allclose(z.inverse(z.transform(x)), x, atol=1e-3)


def test_zca_whitens_the_training_data():
    x = _images()
    z = ZCA.fit(x, eps=1e-6)
    w = z.transform(x).reshape(x.shape[0], -1)
    cov = (w - w.mean(0)).T @ (w - w.mean(0)) / (x.shape[0] - 1)
    assert torch.allclose(cov, torch.eye(cov.shape[0]), atol=1e-2)
    # eps shrinks small-variance directions: covariance eigenvalues are s/(s+eps) < 1
    w = ZCA.fit(x, eps=0.1).transform(x).reshape(x.shape[0], -1)
    assert float(torch.linalg.eigvalsh(torch.cov(w.T)).max()) < 1.0
    assert torch.allclose(z.matrix, z.matrix.T, atol=1e-4)  # zero-phase: W is symmetric


def test_realdata_applies_the_train_fitted_zca_to_every_split():
    src = Digits(DigitsOptions(cache=False))
    raw = load_raw("digits", src)
    plain = RealData.from_raw("digits", raw, 0.1, True)
    data = RealData.from_raw("digits", raw, 0.1, True, zca=True, zca_eps=0.1)
    assert data.zca is not None and data.zca.eps == 0.1
    refit = ZCA.fit(plain.train_x, 0.1)
    assert torch.allclose(data.test_x, refit.transform(plain.test_x), atol=1e-4)
    assert torch.allclose(data.val_x, refit.transform(plain.val_x), atol=1e-4)
    assert torch.allclose(data.zca.inverse(data.test_x), plain.test_x, atol=1e-3)
    info = data.zca.info()
    assert info["eps"] == 0.1 and info["dim"] == 64 and len(info["sha1"]) == 40
    assert data.to("cpu").zca is data.zca


def test_run_records_zca_in_the_synthetic_set(tmp_path):
    from condensery import SyntheticSet
    from condensery._engine.plugins import get_registry
    from condensery._engine.recipe import resolve
    from condensery._engine.runner import run
    from condensery.api.progress import set_quiet

    doc = {
        "name": "zca-meta", "data": {"name": "digits", "zca": True},
        "model": {"name": "convnet", "depth": 1, "width": 8},
        "synthesizer": {"name": "pixel", "ipc": 1, "iterations": 1, "matcher": {"name": "distribution", "batch_real": 4}},
        "evaluators": [{"name": "hard-label", "runs": 1, "epochs": 1}],
    }
    set_quiet(True)
    registry = get_registry()
    run(resolve(doc, registry), registry, tmp_path / "run")
    s = SyntheticSet.load(tmp_path / "run" / "synthetic.safetensors")
    assert s.metadata["zca"]["eps"] == 0.1 and s.metadata["zca"]["dim"] == 64
