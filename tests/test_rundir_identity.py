"""A run directory holds one recipe's run, written by one run at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from condensery._engine.identity import recipe_differences

SHORT = ("--set", "synthesizer.iterations=2", "--set", "evaluators.0.epochs=1", "--set", "evaluators.0.runs=1", "--quiet")


def one_line(err: str) -> bool:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in err


def test_a_finished_run_of_another_recipe_is_refused_not_reported(cli, tiny_recipe, tmp_path):
    out = tmp_path / "run"
    assert cli("run", str(tiny_recipe), "-o", str(out), *SHORT).code == 0
    before = (out / "metrics.json").read_text()
    res = cli("run", str(tiny_recipe), "-o", str(out), *SHORT, "--set", "synthesizer.ipc=2")
    assert res.code == 2 and one_line(res.err), res.err
    assert "a finished run of a different recipe" in res.err and "synthesizer.ipc 1 -> 2" in res.err
    assert "--force" in res.err and "another -o" in res.err
    assert (out / "metrics.json").read_text() == before  # nothing touched
    # the same recipe (threads aside: speed only) is reused as it is
    res = cli("run", str(tiny_recipe), "-o", str(out), *SHORT[:-1], "--set", "runtime.threads=2")
    assert res.code == 0 and "already finished" in res.err
    assert (out / "metrics.json").read_text() == before
    # and --force starts over with the new recipe
    assert cli("run", str(tiny_recipe), "-o", str(out), *SHORT, "--set", "synthesizer.ipc=2", "--force").code == 0
    assert json.loads((out / "metrics.json").read_text())["ipc"] == 2


def test_run_files_without_a_recipe_or_a_broken_recipe_are_refused(cli, tiny_recipe, tmp_path):
    out = tmp_path / "odd"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    res = cli("run", str(tiny_recipe), "-o", str(out), *SHORT)
    assert res.code == 2 and one_line(res.err) and "no recipe.yaml" in res.err
    (out / "recipe.yaml").write_text("synthesizer: [unclosed\n")
    res = cli("run", str(tiny_recipe), "-o", str(out), *SHORT)
    assert res.code == 2 and one_line(res.err) and "recipe.yaml' is not valid YAML at line 2" in res.err
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = cli("run", str(tiny_recipe), "-o", str(afile), *SHORT)
    assert res.code == 2 and one_line(res.err) and "is a file" in res.err


def test_differences_are_named_by_their_full_key():
    old = {"seed": 0, "synthesizer": {"ipc": 1, "matcher": {"name": "distribution"}},
           "evaluators": [{"name": "hard-label", "runs": 3}], "runtime": {"threads": 1, "mixed_precision": "no"}}
    new = {"seed": 1, "synthesizer": {"ipc": 1, "matcher": {"name": "gradient"}},
           "evaluators": [{"name": "hard-label", "runs": 5}], "runtime": {"threads": 4, "mixed_precision": "bf16"}}
    assert recipe_differences(old, new) == [
        "evaluators[0].runs 3 -> 5", "runtime.mixed_precision no -> bf16", "seed 0 -> 1",
        "synthesizer.matcher.name distribution -> gradient"]


HOLD = """
import fcntl, json, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, json.dumps({"pid": os.getpid(), "host": "elsewhere", "since": time.time()}).encode())
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(cli, tiny_recipe, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = cli("run", str(tiny_recipe), "-o", str(out), *SHORT)
        assert res.code == 2 and one_line(res.err), res.err
        assert f"in use by another run (pid {holder.pid} on elsewhere" in res.err
        assert not (out / "metrics.json").exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    res = cli("run", str(tiny_recipe), "-o", str(out), *SHORT)  # the kernel released the dead holder's lock
    assert res.code == 0, res.err
    assert (out / "metrics.json").is_file()
