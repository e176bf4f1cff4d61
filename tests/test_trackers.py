"""Experiment trackers: runtime.log_with logs steps, the recipe and the results, once per run.

Tensorboard's own event reader checks what a user's tensorboard would show. The
once-per-run test installs a third-party plugin the way pip would (a dist-info folder
with an entry point on the path) and runs on two processes: each event is written once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TINY_DM, write_recipe

pytest.importorskip("tensorboard")


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(log_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def _hparams(log_dir: Path) -> dict[str, object]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    found: dict[str, object] = {}
    for events in log_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        try:
            tagged = acc.PluginTagToContent("hparams")
        except KeyError:  # an events file of scalars only
            continue
        for content in tagged.values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for key, value in data.session_start_info.hparams.items():
                    found[key] = value.string_value or value.number_value or value.bool_value
    return found


def test_tensorboard_gets_every_step_the_recipe_and_the_results(cli, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", TINY_DM)
    out = tmp_path / "run"
    res = cli("run", str(recipe), "-o", str(out), "--quiet", "--set", "runtime.log_with=[tensorboard]")
    assert res.code == 0, res.err

    rows = [json.loads(line) for line in (out / "logs" / "steps.jsonl").read_text().splitlines()]
    scalars = _scalars(out / "trackers")
    synth = [r for r in rows if r["stage"] == "synthesize"]
    assert synth, "the tiny run logs synthesis steps"
    logged = scalars["synthesize/loss"]
    assert [v for _, v in logged] == pytest.approx([r["loss"] for r in synth], rel=1e-6)
    assert [v for _, v in scalars["synthesize/step"]] == [r["step"] for r in synth]
    assert [s for s, _ in logged] == sorted({s for s, _ in logged})  # one increasing step per row

    metrics = json.loads((out / "metrics.json").read_text())
    syn = next(r for r in metrics["results"] if r["set"] == "synthetic")
    (_, final), = scalars["results/hard-label/convnet/synthetic/mean"]
    assert final == pytest.approx(syn["mean"], rel=1e-6)
    (_, diff), = scalars["difference/hard-label/convnet"]
    assert diff == pytest.approx(metrics["comparisons"][0]["difference"], rel=1e-6)

    hparams = _hparams(out / "trackers")
    assert hparams["synthesizer.ipc"] == 1 and hparams["synthesizer.matcher.name"] == "distribution"
    # trackers are bookkeeping: the same recipe without them reuses the finished run
    again = cli("run", str(recipe), "-o", str(out))
    assert again.code == 0 and "already finished" in again.err


def test_tracker_steps_continue_after_the_rows_of_an_earlier_attempt(tmp_path):
    from types import SimpleNamespace

    from condensery_trackers import plugin

    logged = []
    accelerator = SimpleNamespace(init_trackers=lambda name, config: logged.append(("init", name, config)),
                                  log=lambda values, step: logged.append(("log", step, values)),
                                  end_training=lambda: logged.append(("end",)))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "steps.jsonl").write_text('{"stage": "synthesize", "step": 0}\n' * 3)  # a first attempt
    ctx = SimpleNamespace(runtime=SimpleNamespace(log_with=["tensorboard"], accelerator=accelerator),
                          run_dir=tmp_path, recipe={"name": "r", "synthesizer": {"ipc": 2, "init": None, "k": [1, 2]}})
    plugin.on_run_start(ctx)
    plugin.on_step(ctx, "synthesize", 3, {"loss": 0.5})
    plugin.on_run_end(ctx, {"results": [{"evaluator": "hard-label", "model": "convnet", "set": "synthetic",
                                          "mean": 0.9, "std": 0.01}], "comparisons": [], "seconds": {"total": 2.0}})
    assert logged[0] == ("init", "r", {"name": "r", "synthesizer.ipc": 2, "synthesizer.init": "null",
                                        "synthesizer.k": "[1, 2]"})
    assert logged[1] == ("log", 3, {"synthesize/loss": 0.5, "synthesize/step": 3.0})
    assert logged[2] == ("log", 4, {"results/hard-label/convnet/synthetic/mean": 0.9,
                                    "results/hard-label/convnet/synthetic/std": 0.01, "seconds/total": 2.0})
    assert logged[3] == ("end",)


def test_without_trackers_the_plugin_does_nothing(tmp_path):
    from types import SimpleNamespace

    from condensery_trackers import plugin

    ctx = SimpleNamespace(runtime=SimpleNamespace(log_with=[], accelerator=None), run_dir=tmp_path, recipe={})
    plugin.on_run_start(ctx)
    plugin.on_step(ctx, "synthesize", 0, {"loss": 1.0})
    plugin.on_run_end(ctx, {})  # no accelerator call: it would raise on None


@pytest.mark.parametrize("name,words", [
    ("tensorbored", ["unknown tracker 'tensorbored'", "tensorboard"]),
])
def test_an_unknown_tracker_is_one_line(cli, tmp_path, name, words):
    recipe = write_recipe(tmp_path / "r.yaml", TINY_DM)
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"), "--set", f"runtime.log_with=[{name}]")
    assert res.code == 2
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
    for w in words:
        assert w in res.err
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_a_tracker_that_is_not_installed_is_one_line(cli, tmp_path):
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    missing = sorted(set(LOGGER_TYPE_TO_CLASS) - {str(t) for t in get_available_trackers()})
    if not missing:
        pytest.skip("every Accelerate tracker is installed here")
    recipe = write_recipe(tmp_path / "r.yaml", TINY_DM)
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"), "--set", f"runtime.log_with=[{missing[0]}]")
    assert res.code == 2
    assert len(res.err.strip().splitlines()) == 1
    assert f"tracker '{missing[0]}' is not installed" in res.err and "pip install" in res.err


PLUGIN = '''
import json, os
from condensery import hookimpl

def _note(event, **extra):
    with open(os.environ["EVENT_LOG"], "a") as f:
        f.write(json.dumps({"event": event, "rank": os.environ.get("RANK", "0"), **extra}) + "\\n")

@hookimpl
def on_run_start(context):
    _note("start")

@hookimpl
def on_step(context, stage, step, metrics):
    _note("step", stage=stage, step=step)

@hookimpl
def on_run_end(context, metrics):
    _note("end")
'''


@pytest.mark.slow
def test_run_events_fire_once_per_run_on_the_main_process(tmp_path):
    site = tmp_path / "site"
    (site / "eventcount").mkdir(parents=True)
    (site / "eventcount" / "__init__.py").write_text(PLUGIN)
    info = site / "condensery_eventcount-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: condensery-eventcount\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[condensery]\neventcount = eventcount\n")
    recipe = write_recipe(tmp_path / "r.yaml", TINY_DM)
    log = tmp_path / "events.jsonl"
    env = {**os.environ, "EVENT_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "condensery", "run", str(recipe), "-o", str(tmp_path / "run"),
                           "--quiet", "--processes", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in events if e["event"] != "step"] == ["start", "end"]
    assert {e["rank"] for e in events} == {"0"}
    rows = (tmp_path / "run" / "logs" / "steps.jsonl").read_text().splitlines()
    assert len([e for e in events if e["event"] == "step"]) == len(rows)
