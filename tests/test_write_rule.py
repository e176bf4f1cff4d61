"""The write rule (``condensery.outputs``): what each command may replace, and caches that lose nothing.

The one-line refusals of every command are cases in ``test_user_errors.py``; here: the marks
the rule reads, the issue's examples end to end (the run's files unchanged byte for byte),
the lock on every run directory a command writes, and damaged cache files moved aside.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from condensery import SyntheticSet
from condensery.outputs import claim_output, move_aside, purpose_of, run_lock
from safetensors.torch import save_file

from .conftest import digits_recipe
from .test_user_errors import TRAJECTORY, fake_export, fake_generator, fake_run

EVAL = digits_recipe("ev")


def a_set(path: Path, seed: int = 0) -> Path:
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    SyntheticSet(x, torch.arange(10)).save(path)
    return path


def one_line(err: str) -> str:
    [line] = [x for x in err.splitlines() if x.strip()]
    return line


# -- the marks -----------------------------------------------------------------------------------
def test_marks_tell_what_condensery_wrote_and_for_which_purpose(tmp_path):
    from condensery.figures import save_grid
    from condensery.teachers import save_teacher

    assert purpose_of(a_set(tmp_path / "s.safetensors")) == "set"
    save_file({"w": torch.zeros(1)}, str(tmp_path / "w.safetensors"))
    assert purpose_of(tmp_path / "w.safetensors") is None
    save_teacher(tmp_path / "t.safetensors", torch.nn.Linear(2, 2), {"name": "mlp"})
    assert purpose_of(tmp_path / "t.safetensors") == "teacher"
    save_grid(torch.zeros(2, 1, 8, 8), torch.arange(2), [0.5], [0.5], tmp_path / "g.png")
    assert purpose_of(tmp_path / "g.png") == "picture"
    from PIL import Image

    Image.new("L", (4, 4)).save(tmp_path / "mine.png")
    assert purpose_of(tmp_path / "mine.png") is None
    (tmp_path / "r.md").write_text("# condensery report\n")
    (tmp_path / "n.md").write_text("# my notes\n")
    assert (purpose_of(tmp_path / "r.md"), purpose_of(tmp_path / "n.md")) == ("report", None)
    assert purpose_of(fake_run(tmp_path)) == "run"
    assert purpose_of(fake_generator(tmp_path)) == "generator"
    assert purpose_of(fake_export(tmp_path)) == "export"
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".lock").write_text("")
    assert purpose_of(tmp_path / "hidden") == "empty"
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 8 + b"{")  # absurd header length: not condensery's
    assert purpose_of(tmp_path / "junk.safetensors") is None


def test_a_new_name_inside_a_run_is_fine_its_own_files_are_not(tmp_path):
    run = fake_run(tmp_path)
    assert claim_output(run / "eval-x", "eval") == run / "eval-x"
    assert claim_output(run / "analysis", "analysis", own_run=run)
    assert claim_output(run / "checkpoints" / "a", "analysis", own_run=run)  # the command's own run
    with pytest.raises(Exception, match="checkpoints' of the run directory"):
        claim_output(run / "checkpoints" / "a", "analysis")
    project = tmp_path / "project"  # a folder of the user's that keeps its recipe.yaml: no run
    (project / "checkpoints").mkdir(parents=True)
    (project / "recipe.yaml").write_text("name: mine\n")
    assert claim_output(project / "checkpoints" / "r", "run") == project / "checkpoints" / "r"


def test_force_opens_only_the_last_rule(tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "eval.json").write_text(json.dumps({"format": "condensery.eval/1"}))
    assert claim_output(ev, "run", force=True) == ev  # an evaluation can be replaced by a run, if asked
    for target in (fake_run(tmp_path, "r"), fake_generator(tmp_path)):
        with pytest.raises(Exception, match="choose another path"):
            claim_output(target, "export", force=True)


# -- the examples, end to end ------------------------------------------------------------
def test_eval_onto_a_finished_run_leaves_its_metrics_alone(cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(digits_recipe("r", synthesizer="{name: random, ipc: 1}"))
    run = tmp_path / "run"
    assert cli("run", str(recipe), "-o", str(run), "--quiet").code == 0
    before = (run / "metrics.json").read_bytes()
    (tmp_path / "e.yaml").write_text(EVAL)
    res = cli("eval", str(a_set(tmp_path / "other.safetensors")), "--recipe", str(tmp_path / "e.yaml"), "-o", str(run),
              "--quiet", "--force")
    assert res.code == 2 and "is a run directory" in one_line(res.err)
    assert (run / "metrics.json").read_bytes() == before
    res = cli("run", str(recipe), "-o", str(run), "--quiet")  # still the run's own, finished result
    assert res.code == 0 and (run / "metrics.json").read_bytes() == before


def test_generate_never_writes_into_its_generator(cli, tmp_path):
    gen = fake_generator(tmp_path)
    res = cli("generate", str(gen), "--ipc", "2", "-o", str(gen / "pool.safetensors"), "--force")
    assert res.code == 2 and "which this command reads" in one_line(res.err)
    assert (gen / "pool.safetensors").read_bytes() == b"weights"


def test_an_evaluation_folder_holds_one_set_under_one_recipe(cli, tmp_path):
    (tmp_path / "e.yaml").write_text(EVAL)
    out = tmp_path / "ev"
    first = [str(a_set(tmp_path / "a.safetensors")), "--recipe", str(tmp_path / "e.yaml"), "-o", str(out), "--quiet"]
    assert cli("eval", *first).code == 0
    assert purpose_of(out) == "eval" and json.loads((out / "eval.json").read_text())["source"].endswith("a.safetensors")
    assert cli("eval", *first).code == 0  # the same evaluation again: its own folder
    before = (out / "metrics.json").read_bytes()
    other = [str(a_set(tmp_path / "b.safetensors", seed=1)), *first[1:]]
    res = cli("eval", *other)
    assert res.code == 2 and "holds the evaluation of another set or recipe" in one_line(res.err)
    assert (out / "metrics.json").read_bytes() == before
    assert cli("eval", *other, "--force").code == 0
    assert json.loads((out / "eval.json").read_text())["source"].endswith("b.safetensors")


def test_eval_and_experts_take_the_run_directory_lock(cli, tmp_path):
    (tmp_path / "e.yaml").write_text(EVAL)
    (tmp_path / "t.yaml").write_text(TRAJECTORY)
    out = tmp_path / "ev"
    with run_lock(out):
        res = cli("eval", str(a_set(tmp_path / "a.safetensors")), "--recipe", str(tmp_path / "e.yaml"), "-o", str(out),
                  "--quiet")
        assert res.code == 2 and "is in use by another run" in one_line(res.err)
        res = cli("experts", str(tmp_path / "t.yaml"), "-o", str(out), "--quiet")
        assert res.code == 2 and "is in use by another run" in one_line(res.err)


def test_a_killed_export_is_resumed_not_refused(cli, tmp_path):
    SyntheticSet(torch.zeros(4, 1, 8, 8), torch.arange(4), metadata={"mean": [0.5], "std": [0.5]}).save(tmp_path / "s.safetensors")
    out = tmp_path / "out"
    (out / "train" / "0").mkdir(parents=True)  # killed after train/ moved in, before set.json
    (out / ".export.json").write_text(json.dumps({"format": "condensery.export/1", "state": "writing"}))
    res = cli("export", str(tmp_path / "s.safetensors"), str(out))
    assert res.code == 0, res.err
    assert (out / "set.json").is_file() and not (out / ".export.json").exists()
    assert cli("export", str(tmp_path / "s.safetensors"), str(out)).code == 0  # an export replaces its own


# -- caches: a damaged file is moved aside, never replaced silently ------------------------------
def test_move_aside_keeps_the_file_and_names_it(tmp_path, capsys):
    bad = tmp_path / "expert_0000.safetensors"
    bad.write_bytes(b"junk")
    moved = move_aside(bad, "not a readable expert")
    assert not bad.exists() and moved.read_bytes() == b"junk" and ".corrupt-" in moved.name
    err = capsys.readouterr().err
    assert str(bad) in err and str(moved) in err
    bad.write_bytes(b"junk again")
    assert move_aside(bad, "damaged") != moved  # a second one the same second gets its own name


def test_a_damaged_expert_shard_is_moved_aside_and_trained_again(cli, tmp_path):
    (tmp_path / "t.yaml").write_text(TRAJECTORY)
    shard = tmp_path / "run" / "experts" / "expert_0000.safetensors"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"half a shard")
    res = cli("experts", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "run"), "--quiet")
    assert res.code == 0, res.err
    assert "moved it aside" in res.err and str(shard) in res.err
    [aside] = shard.parent.glob("expert_0000.safetensors.corrupt-*")
    assert aside.read_bytes() == b"half a shard"
    assert purpose_of(shard) == "expert"
    assert purpose_of(tmp_path / "run") == "run"  # experts first: `condensery run` then takes the folder as its own
    assert claim_output(tmp_path / "run", "run") == tmp_path / "run"


def test_a_damaged_or_foreign_cached_teacher_is_moved_aside(tmp_path, capsys):
    from condensery.teachers import save_teacher
    from condensery_eval.teacher import _check_cached

    spec = {"name": "convnet", "depth": 2}
    cached = tmp_path / "t.safetensors"
    cached.write_bytes(b"not a teacher")
    _check_cached(cached, spec)
    assert not cached.exists() and len(list(tmp_path.glob("t.safetensors.corrupt-*"))) == 1
    save_teacher(cached, torch.nn.Linear(2, 2), {"name": "mlp"})
    _check_cached(cached, spec)  # a teacher of another model: not this slot's
    assert not cached.exists() and len(list(tmp_path.glob("t.safetensors.corrupt-*"))) == 2
    save_teacher(cached, torch.nn.Linear(2, 2), spec)
    _check_cached(cached, spec)
    assert cached.is_file()
    assert capsys.readouterr().err.count("moved it aside") == 2
