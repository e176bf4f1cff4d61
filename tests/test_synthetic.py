"""SyntheticSet files: round trips and clear errors for malformed files."""

from __future__ import annotations

import json

import pytest
import torch
from condensery import SyntheticSet
from condensery.api.errors import UserError
from safetensors.torch import save_file


def test_round_trip_hard_labels(tmp_path):
    s = SyntheticSet(torch.randn(6, 3, 4, 4), torch.tensor([0, 0, 1, 1, 2, 2]),
                     metadata={"method": "dm", "ipc": 2, "class_names": ["a", "b", "c"], "mean": [0.5] * 3})
    s.save(tmp_path / "s.safetensors")
    t = SyntheticSet.load(tmp_path / "s.safetensors")
    assert torch.equal(t.images, s.images) and torch.equal(t.labels, s.labels)
    assert t.metadata == s.metadata and t.lr is None and t.stages is None and not t.soft


def test_round_trip_soft_labels_lr_and_stages(tmp_path):
    soft = torch.softmax(torch.randn(4, 3), dim=1)
    s = SyntheticSet(torch.randn(4, 1, 8, 8), soft, lr=0.0123, stages=torch.tensor([0, 0, 1, 1]), stage_lrs=[0.01, 0.02])
    s.save(tmp_path / "s.safetensors")
    t = SyntheticSet.load(tmp_path / "s.safetensors")
    assert t.soft and torch.allclose(t.labels, soft) and t.lr == pytest.approx(0.0123)
    assert t.stages.tolist() == [0, 0, 1, 1] and t.stage_lrs == [0.01, 0.02]
    assert t.hard_labels.tolist() == soft.argmax(1).tolist()


def test_header_is_plain_json(tmp_path):
    from safetensors import safe_open

    SyntheticSet(torch.zeros(1, 1, 2, 2), torch.tensor([0]), metadata={"ipc": 1}).save(tmp_path / "s.safetensors")
    with safe_open(str(tmp_path / "s.safetensors"), "pt") as f:
        header = json.loads(f.metadata()["condensery"])
    assert header["format"] == "condensery.synthetic/1" and header["metadata"] == {"ipc": 1}


def test_malformed_files_give_clear_errors(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="not a readable .safetensors"):
        SyntheticSet.load(tmp_path / "junk.safetensors")
    save_file({"images": torch.zeros(1, 1, 2, 2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(UserError, match="has no condensery header"):
        SyntheticSet.load(tmp_path / "plain.safetensors")
    save_file({"images": torch.zeros(1, 1, 2, 2)}, str(tmp_path / "nolabels.safetensors"),
              metadata={"condensery": json.dumps({"format": "condensery.synthetic/1"})})
    with pytest.raises(UserError, match="lacks the 'labels' tensor"):
        SyntheticSet.load(tmp_path / "nolabels.safetensors")
    with pytest.raises(UserError, match="does not exist"):
        SyntheticSet.load(tmp_path / "missing.safetensors")


def test_shapes_are_checked():
    with pytest.raises(UserError, match=r"\[N,C,H,W\]"):
        SyntheticSet(torch.zeros(3, 4, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(UserError, match="labels must be"):
        SyntheticSet(torch.zeros(3, 1, 4, 4), torch.zeros(2, dtype=torch.long))


def test_save_is_atomic(tmp_path, monkeypatch):
    import condensery.api.synthetic as syn

    path = tmp_path / "s.safetensors"
    SyntheticSet(torch.zeros(1, 1, 2, 2), torch.tensor([0])).save(path)
    before = path.read_bytes()

    def failing_save(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(syn, "save_file", failing_save)
    with pytest.raises(OSError):
        SyntheticSet(torch.ones(1, 1, 2, 2), torch.tensor([0])).save(path)
    assert path.read_bytes() == before


def test_protocol_metadata_carries_only_the_teacher():
    s = SyntheticSet(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]),
                     metadata={"teacher": {"path": "t.safetensors"}, "synthesis": {"diversity": 0.2}})
    assert s.protocol_metadata() == {"teacher": {"path": "t.safetensors"}}
    assert SyntheticSet(torch.zeros(1, 1, 2, 2), torch.tensor([0])).protocol_metadata() == {}
