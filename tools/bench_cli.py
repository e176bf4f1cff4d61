"""How long the command line takes to answer: ``--help``, ``plugins`` and recipe errors.

Each command runs in a fresh interpreter ``--repeats`` times; the median wall time is
reported next to the target (1.5 s), plus the same for ``python -c "import torch"`` as the
floor a command that needs torch cannot go below. JSON on stdout.

    python tools/bench_cli.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAD_NAME = """name: bad
data: {name: digits}
synthesizer: {name: pixell, ipc: 1}
evaluators: [{name: hard-label}]
"""
BAD_OPTION = """name: bad
data: {name: digits}
synthesizer: {name: pixel, ipc: -1, matcher: {name: distribution}}
evaluators: [{name: hard-label}]
"""
BAD_MODEL = """name: bad
data: {name: digits}
model: {name: convnet, widht: 16}
synthesizer: {name: pixel, ipc: 1, matcher: {name: distribution}}
evaluators: [{name: hard-label}]
"""


def wall(cmd: list[str], repeats: int) -> dict[str, float]:
    times, code = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        code = subprocess.run(cmd, capture_output=True).returncode
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3), "exit_code": code}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    py = [sys.executable, "-m", "condensery"]
    with tempfile.TemporaryDirectory() as tmp:
        bad_name, bad_option, bad_model = Path(tmp) / "name.yaml", Path(tmp) / "option.yaml", Path(tmp) / "model.yaml"
        bad_name.write_text(BAD_NAME)
        bad_option.write_text(BAD_OPTION)
        bad_model.write_text(BAD_MODEL)
        cases = {
            "condensery --help": [*py, "--help"],
            "condensery plugins": [*py, "plugins"],
            "recipe error: unknown component name": [*py, "run", str(bad_name)],
            "recipe error: bad option value (validated against the light options module)": [*py, "run", str(bad_option)],
            "recipe error: bad model option (model: {name: convnet, widht: 16})": [*py, "run", str(bad_model)],
            "python -c 'import torch' (floor for anything that needs torch)": [sys.executable, "-c", "import torch"],
        }
        out = {name: wall(cmd, args.repeats) for name, cmd in cases.items()}
    print(json.dumps({"target_s": 1.5, "repeats": args.repeats, "load_average": [round(x, 2) for x in os.getloadavg()],
                      "results": out}, indent=2))


if __name__ == "__main__":
    main()
