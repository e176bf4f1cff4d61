"""condensery.api.files.atomic_path: the one way files are written (temp sibling, fsync, rename)."""

from __future__ import annotations

import os

import pytest
from condensery.api.files import atomic_path, write_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "metrics.json"
    write_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_write_removes_temp_files_of_dead_writers_only(tmp_path):
    path = tmp_path / "set.safetensors"
    dead, live = tmp_path / ".set.safetensors.999999999.tmp", tmp_path / f".set.safetensors.{os.getppid()}.tmp"
    dead.write_bytes(b"torn")
    live.write_bytes(b"being written")
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".set.safetensors.")
        tmp.write_bytes(b"whole")
    assert path.read_bytes() == b"whole" and not dead.exists() and live.exists()


def test_write_atomic_creates_parents(tmp_path):
    write_atomic(tmp_path / "a" / "b.txt", "x")
    assert (tmp_path / "a" / "b.txt").read_text() == "x"
