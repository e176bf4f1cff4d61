"""Exit codes mean something: 0 done, 2 the user's input or environment, 3 diverged, 1 a defect.

An ``OSError`` (full disk, read-only or missing path, a file where a folder should be) is the
user's environment: one line naming the path and the fix, exit 2, never "a bug".
"""

from __future__ import annotations

import errno

import pytest

from .conftest import digits_recipe, write_recipe


def one_line(res) -> str:
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    return lines[0]


def test_a_full_disk_is_exit_2_naming_the_path(cli, tmp_path, monkeypatch):
    from pathlib import Path

    def full(self, *args, **kwargs):  # what a full disk raises on write: no file name
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    target = tmp_path / "q.yaml"
    res = cli("recipes", "copy", "quickstart", str(target))
    assert res.code == 2
    line = one_line(res)
    assert "No space left on device" in line and f"'{target}'" in line and "free some space" in line
    assert not target.exists() and not list(tmp_path.glob(".q.yaml.*"))


def test_a_file_where_a_folder_should_be_is_exit_2(cli, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    res = cli("recipes", "copy", "quickstart", str(blocker / "sub" / "q.yaml"))
    assert res.code == 2
    assert str(blocker) in one_line(res)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "free some space"), (errno.EROFS, "read-only"),
                                         (errno.EACCES, "writable"), (errno.EDQUOT, "quota")])
def test_an_os_error_inside_a_run_is_exit_2_with_the_fix(cli, tmp_path, monkeypatch, code, words):
    import condensery._engine.runner as runner

    def failing(*args, **kwargs):
        raise OSError(code, "simulated", str(tmp_path / "out" / "metrics.json"))

    monkeypatch.setattr(runner, "run", failing)
    recipe = write_recipe(tmp_path / "r.yaml", digits_recipe("exitcodes", synthesizer="{name: random, ipc: 1}"))
    res = cli("run", str(recipe), "-o", str(tmp_path / "out"), "--quiet")
    assert res.code == 2
    line = one_line(res)
    assert "metrics.json" in line and words in line and "bug" not in line


def test_a_genuine_defect_is_still_exit_1(cli, tmp_path, monkeypatch):
    import condensery._engine.runner as runner

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(runner, "run", broken)
    recipe = write_recipe(tmp_path / "r.yaml", digits_recipe("exitcodes", synthesizer="{name: random, ipc: 1}"))
    res = cli("run", str(recipe), "-o", str(tmp_path / "out"), "--quiet")
    assert res.code == 1 and "a bug in" in one_line(res)
