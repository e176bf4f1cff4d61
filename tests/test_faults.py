"""Faults: Ctrl-C, a killed launcher, a plugin exiting at import, a kill between set and picture."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import write_recipe

SLOW = """
name: slow
seed: 0
data: {name: digits}
model: {name: convnet, depth: 2, width: 16}
synthesizer: {name: pixel, ipc: 2, iterations: 100000, matcher: {name: distribution, batch_real: 16}}
evaluators: [{name: hard-label, runs: 1, epochs: 1}]
runtime: {threads: 1, checkpoint_every: 5}
"""


def _as_at_a_terminal() -> None:
    """SIGINT handled as in a terminal: a suite started in the background of a script (``cmd &``)
    hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def condensery(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "condensery", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_as_at_a_terminal)


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), proc.stderr.read() if proc.poll() is not None else "timed out"


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_ctrl_c_is_one_line_with_the_resume_hint_and_exit_130(tmp_path):
    recipe = write_recipe(tmp_path / "slow.yaml", SLOW)
    out = tmp_path / "run"
    proc = condensery("run", str(recipe), "-o", str(out))
    wait_for(out / "checkpoints" / "pixel.safetensors", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == \
        "error: interrupted; rerun the same command to resume from the last checkpoint"
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killing_the_launcher_stops_its_ranks(tmp_path):
    recipe = write_recipe(tmp_path / "slow.yaml", SLOW)
    out = tmp_path / "run"
    launcher = condensery("run", str(recipe), "-o", str(out), "--processes", "2")
    wait_for(out / "checkpoints" / "pixel.safetensors", launcher, seconds=180)
    ranks = children(launcher.pid)
    assert len(ranks) == 2
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 30
    while any(alive(r) for r in ranks) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(r) for r in ranks)


def test_a_plugin_exiting_at_import_is_listed_as_broken(monkeypatch):
    from condensery._engine import plugins

    class ExitingEntryPoint:
        name, dist = "quits", None

        def load(self):
            raise SystemExit("plugin quits at import")

    real = plugins.md.entry_points
    monkeypatch.setattr(plugins.md, "entry_points", lambda group: [*real(group=group), ExitingEntryPoint()])
    reg = plugins.build_registry()
    assert [b.plugin for b in reg.broken] == ["quits"]
    assert "SystemExit" in reg.broken[0].error and "pixel" in reg.names("synthesizer")


def test_a_run_killed_between_its_set_and_its_picture_writes_the_picture_on_resume(cli, tiny_recipe, tmp_path):
    out = tmp_path / "run"
    short = ("--set", "synthesizer.iterations=2", "--set", "evaluators.0.epochs=1", "--quiet")
    assert cli("run", str(tiny_recipe), "-o", str(out), *short).code == 0
    (out / "grid.png").unlink()
    (out / "metrics.json").unlink()  # as if killed right after synthetic.safetensors was written
    assert cli("run", str(tiny_recipe), "-o", str(out), *short).code == 0
    assert (out / "grid.png").is_file() and (out / "metrics.json").is_file()
