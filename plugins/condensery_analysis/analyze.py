"""``condensery analyze RUN_DIR``: what is in a distilled set, measured three ways.

(a) Substitution outside the standard setting: the set mixed with real data, and trained
    far longer than its protocol, each next to the same number of random real images.
(b) Early-training dynamics: which checkpoint of a real-data training run a network trained
    on the set agrees with most (prediction agreement on the test split).
(c) Per-image information: the test-accuracy drop when each distilled image is left out,
    and its nearest real training images in the feature space of the real-data network.

Every network is trained with the run's own evaluation protocol (model, lr, batch size,
augmentation, momentum, weight decay; the first evaluator that has ``epochs``) unless an
option overrides it; accuracy is test accuracy at the end of training, mean ± std over
``runs`` seeds. Leave-one-out runs reuse the seeds of the full-set runs, so each drop is a
paired difference. Writes ``analysis.json``, ``report.md`` and PNG figures.

One module per job: ``run_loading`` (options, protocol, the run), ``sampling`` (training and
real subsets), one per section (``substitution``, ``dynamics``, ``per_image``); their names
are re-exported here.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from condensery import UserError, say
from condensery.api.files import write_json
from condensery.outputs import claim_output, run_lock

from .dynamics import Dynamics
from .per_image import PerImage
from .run_loading import SECTIONS, AnalysisOptions, load_run, protocol_of
from .sampling import AnalysisBase, summary
from .substitution import Substitution

#: the mark of an analysis folder's ``analysis.json`` (``condensery.outputs``)
ANALYSIS_FORMAT = "condensery.analysis/1"


class Analysis(Substitution, Dynamics, PerImage, AnalysisBase):
    """The three measurements on one run directory; each returns a JSON-able dict."""


def analyze(run_dir: str | Path, output: str | Path | None, options: AnalysisOptions, registry: Any,
            overrides: list[str] | None = None, force: bool = False) -> tuple[dict[str, Any], Path]:
    """Run the chosen sections on ``run_dir``; write ``analysis.json``, ``report.md`` and figures.

    The output obeys the write rule (``condensery.outputs``); one inside the run directory (the
    default ``RUN_DIR/analysis``) is written under the run's lock.
    """
    unknown = [s for s in options.sections if s not in SECTIONS]
    if unknown:
        raise UserError(f"unknown analysis section '{unknown[0]}'; choose from {', '.join(SECTIONS)}")
    if options.runs < 1 or options.max_images < 0 or options.real_epochs < 1 or options.checkpoints < 2:
        raise UserError("--runs and --real-epochs must be >= 1, --checkpoints >= 2, --max-images >= 0")
    run_dir = Path(run_dir)
    out = Path(output) if output else run_dir / "analysis"
    claim_output(out, "analysis", force=force, own_run=run_dir,
                 reads=[run_dir / "synthetic.safetensors", run_dir / "recipe.yaml", run_dir / "metrics.json"])
    inside = Path(os.path.abspath(run_dir)) in Path(os.path.abspath(out)).parents
    with run_lock(run_dir, take=inside and run_dir.is_dir()):
        return _analyze(run_dir, out, options, registry, overrides)


def _analyze(run_dir: Path, out: Path, options: AnalysisOptions, registry: Any,
             overrides: list[str] | None) -> tuple[dict[str, Any], Path]:
    from .report import write_report

    t0 = time.perf_counter()
    plan, ctx, synset = load_run(run_dir, registry, overrides or [])
    protocol = protocol_of(plan, synset, options)
    a = Analysis(ctx, synset, protocol, options)
    say(f"[analyze] {run_dir}: {len(synset)} images of {plan.data_name}, protocol {protocol.epochs} epochs, "
        f"{options.runs} runs, device {ctx.device}")
    result: dict[str, Any] = {
        "format": ANALYSIS_FORMAT, "run_dir": str(run_dir), "recipe": plan.name, "dataset": plan.data_name,
        "method": synset.metadata.get("method"), "num_images": len(synset), "images_per_class": a.counts,
        "protocol": asdict(protocol), "options": asdict(options), "seconds": {},
    }
    base = a.base()
    result["base"] = {"set": summary(base["set"]), "random": summary(base["random"])}
    for section, fn in (("substitution", a.substitution), ("dynamics", a.dynamics), ("per-image", a.per_image)):
        if section in options.sections:
            t = time.perf_counter()
            result[section] = fn()
            result["seconds"][section] = round(time.perf_counter() - t, 2)
    result["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    write_report(result, ctx, synset, out)
    write_json(out / "analysis.json", result)
    return result, out
