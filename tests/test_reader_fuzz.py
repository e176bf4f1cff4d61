"""A fuzzer over the data readers: a result or one line, never a traceback.

Hypothesis writes what a reader reads and runs the command that reads it, in-process through
the CLI's error handling:

- ``tensors`` files (``data: {name: tensors}``): random shapes, dtypes and label values,
  missing or extra tensors, truncated files and random bytes; read by ``condensery run
  --no-eval`` of the ``random`` selection (the data is loaded and validated, a set of one
  image per class is drawn and saved: no training, no distillation);
- ImageFolder trees: random, truncated and non-image files, empty and mismatched class
  folders, files at the top of a split, missing splits; read the same way;
- a generator folder's ``config.json``: random JSON documents and random edits of a real
  ``pool`` generator's config; read by ``condensery generate``.

Every example must end in exactly one of two ways: exit 0 with a valid result (a set that
loads, one image per class or ``ipc`` per class), or exit 2 with exactly one line on
stderr and no traceback. Derandomized (every run tries the same examples); CI tries
``CONDENSERY_FUZZ_EXAMPLES`` per property (default 12, about 30 s on one core); a longer
search: ``CONDENSERY_FUZZ_EXAMPLES=500 pytest tests/test_reader_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from condensery import SyntheticSet
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from safetensors.torch import save_file

EXAMPLES = int(os.environ.get("CONDENSERY_FUZZ_EXAMPLES", "12"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
          torch.float32, torch.float64, torch.bool]
RUN_TAIL = ("model: {name: convnet, depth: 1, width: 4}\nsynthesizer: {name: random, ipc: 1}\n"
            "evaluators: []\nruntime: {threads: 1}\n")


def run_cli(*argv: str) -> tuple[int, list[str]]:
    """``condensery ARGV`` in this process: (exit code, non-empty stderr lines)."""
    from condensery._engine.cli import main

    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def check(code: int, lines: list[str], result: Path, per_class: int | None = None) -> str:
    """The contract: exit 0 and a set that loads, or exit 2 and one line; 'valid' or 'refused'."""
    with contextlib.suppress(InvalidArgument):  # outside an example (the harness test) there is nothing to count
        event("valid" if code == 0 else "refused")  # --hypothesis-show-statistics shows the mix
    if code == 0:
        synset = SyntheticSet.load(result)
        counts = torch.bincount(synset.hard_labels.long())
        assert len(synset) > 0 and int(counts.min()) >= 1, counts
        if per_class is not None:
            assert set(counts.tolist()) == {per_class}, counts
        return "valid"
    assert code == 2, (code, lines)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in lines[0], lines
    return "refused"


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def run_reader(work: Path, data: str) -> str:
    """``condensery run`` of the random selection on ``data`` (flow YAML), without evaluation."""
    recipe = work / "r.yaml"
    recipe.write_text(f"name: fuzz\nseed: 0\ndata: {data}\n{RUN_TAIL}")
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    code, lines = run_cli("run", str(recipe), "-o", str(out), "--quiet", "--no-eval")
    return check(code, lines, out / "synthetic.safetensors")


# -- tensors ------------------------------------------------------------------------------------
@st.composite
def tensor_of(draw, shape: tuple[int, ...], integral: bool = False) -> torch.Tensor:
    """A tensor of ``shape`` and a random dtype: seeded random values, sometimes one odd value planted
    (NaN, inf, a negative or huge label, a fraction)."""
    dtype = draw(st.sampled_from(DTYPES))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    hi = 4 if integral else 256
    x = torch.randint(-1 if integral and draw(st.booleans()) else 0, hi, shape, generator=gen).double()
    if not integral and dtype.is_floating_point:
        x = x / 255
    if x.numel() and draw(st.integers(0, 3)) == 0:
        odd = draw(st.sampled_from([float("nan"), float("inf"), -1.0, 0.5, 2.0**40, 7.0]))
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = odd
    if dtype == torch.bool:
        return x != 0
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        x = torch.nan_to_num(x, nan=0.0).clamp(info.min, info.max)
    return x.to(dtype)


@st.composite
def tensors_files(draw) -> bytes:
    """The bytes of one ``.safetensors`` file: half of them a tidy images/labels pair (random size,
    dtypes a user would store), the rest anything: odd shapes and dtypes, planted values, damage."""
    import safetensors.torch as sft

    if draw(st.booleans()):
        n, c = draw(st.integers(2, 8)), draw(st.sampled_from([1, 3]))
        gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
        x = torch.randint(0, 256, (n, c, draw(st.integers(1, 6)), draw(st.integers(1, 6))), generator=gen)
        image_dtype = draw(st.sampled_from([torch.uint8, torch.float32, torch.float16, torch.float64]))
        images = x.to(torch.uint8) if image_dtype == torch.uint8 else (x / 255).to(image_dtype)
        labels = (torch.arange(n) % 2)[torch.randperm(n, generator=gen)]
        label_dtype = draw(st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.float32]))
        return sft.save({"images": images.contiguous(), "labels": labels.to(label_dtype).contiguous()})
    n = draw(st.integers(0, 8))
    image_shape = draw(st.one_of(st.just((n, 1, 4, 4)), st.tuples(st.just(n), st.integers(0, 4), st.integers(0, 5),
                                                                  st.integers(1, 5)),
                                 st.lists(st.integers(0, 4), max_size=5).map(tuple)))
    label_shape = draw(st.one_of(st.just((n,)), st.lists(st.integers(0, 9), max_size=2).map(tuple)))
    tensors = {"images": draw(tensor_of(image_shape)), "labels": draw(tensor_of(label_shape, integral=True))}
    drop = draw(st.sampled_from([None, None, None, "images", "labels"]))
    if drop:
        del tensors[drop]
    if draw(st.integers(0, 5)) == 0:
        tensors["extra"] = torch.zeros(2)
    data = sft.save({k: v.contiguous() for k, v in tensors.items()})
    damage = draw(st.sampled_from(["none"] * 6 + ["truncate", "bytes", "empty"]))
    if damage == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if damage == "bytes":
        return draw(st.binary(max_size=64))
    return b"" if damage == "empty" else data


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reader-fuzz")


def test_the_harness_tells_a_valid_read_from_a_refused_one(work):
    d = fresh(work / "harness")
    x = torch.randint(0, 255, (6, 1, 4, 4), dtype=torch.uint8)
    save_file({"images": x, "labels": torch.arange(6) % 2}, str(d / "tr.st"))
    assert run_reader(d, f"{{name: tensors, train: '{d}/tr.st', test: '{d}/tr.st', val_fraction: 0.0}}") == "valid"
    save_file({"images": x, "labels": torch.arange(6) - 1}, str(d / "te.st"))
    assert run_reader(d, f"{{name: tensors, train: '{d}/tr.st', test: '{d}/te.st', val_fraction: 0.0}}") == "refused"


@FUZZ
@given(train=tensors_files(), test=st.one_of(st.none(), tensors_files()),
       names=st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "c", "a"]), max_size=4)),
       val=st.sampled_from([0.0, 0.0, 0.25]))
def test_random_tensors_files_are_a_set_or_one_line(work, train, test, names, val):
    d = fresh(work / "tensors")
    (d / "tr.st").write_bytes(train)
    (d / "te.st").write_bytes(train if test is None else test)
    extra = f", class_names: {json.dumps(names)}" if names is not None else ""
    run_reader(d, f"{{name: tensors, train: '{d}/tr.st', test: '{d}/te.st', val_fraction: {val}{extra}}}")


# -- ImageFolder --------------------------------------------------------------------------------
@st.composite
def image_files(draw) -> tuple[str, bytes]:
    """(file name, bytes): mostly decodable PNG/JPEG images, sometimes damaged or no image at all."""
    from PIL import Image

    kind = draw(st.sampled_from(["png"] * 9 + ["jpg"] * 4 + ["truncated", "bytes", "empty", "text"]))
    name = f"{draw(st.integers(0, 99))}"
    if kind == "text":
        return name + ".txt", b"notes"
    if kind in ("bytes", "empty"):
        return name + draw(st.sampled_from([".png", ".jpg", ".jpeg"])), b"" if kind == "empty" else draw(st.binary(max_size=40))
    mode = draw(st.sampled_from(["L"] * 5 + ["RGB", "RGBA", "P", "1", "I;16"] if kind != "jpg" else ["L", "RGB"]))
    size = draw(st.sampled_from([(8, 8)] * 8 + [(5, 9), (1, 1)]))
    image = Image.new(mode, size, color=draw(st.integers(0, 255)) if mode not in ("RGB", "RGBA") else None)
    buf = io.BytesIO()
    image.save(buf, format="JPEG" if kind == "jpg" else "PNG")
    data = buf.getvalue()
    if kind == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return name + (".jpg" if kind == "jpg" else ".png"), data


split_trees = st.dictionaries(st.sampled_from(["cat", "dog", "0", "z z"]), st.lists(image_files(), max_size=3),
                              min_size=1, max_size=3)


@FUZZ
@given(train=split_trees, test=st.sampled_from([None, None, None]) | split_trees, stray=st.booleans(),
       size=st.sampled_from([None, None, 6]))
def test_random_image_folders_are_a_set_or_one_line(work, train, test, stray, size):
    d = fresh(work / "images")
    for split, tree in (("train", train), ("test", train if test is None else test)):
        (d / "root" / split).mkdir(parents=True)
        for cls, files in tree.items():
            (d / "root" / split / cls).mkdir()
            for name, data in files:
                (d / "root" / split / cls / name).write_bytes(data)
    if stray:  # a file at the top of a split, beside the class folders
        (d / "root" / "train" / "README.txt").write_text("about these images")
    extra = f", image_size: {size}" if size else ""
    run_reader(d, f"{{name: imagefolder, root: '{d}/root', workers: 0, val_fraction: 0.0{extra}}}")


# -- the generator folder -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool_generator(work) -> Path:
    """A real ``pool`` generator (a two-step multisize run of two images per class)."""
    recipe = work / "pool.yaml"
    recipe.write_text("name: pool\nseed: 0\ndata: {name: digits}\nmodel: {name: convnet, depth: 1, width: 4}\n"
                      "synthesizer: {name: multisize, ipc: 2, iterations: 2, matcher: {name: distribution, "
                      "batch_real: 4}}\nevaluators: []\nruntime: {threads: 1}\n")
    code, lines = run_cli("run", str(recipe), "-o", str(work / "pool-run"), "--quiet", "--no-eval")
    assert code == 0, lines
    return work / "pool-run" / "generator"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


@st.composite
def generator_configs(draw, real: dict) -> str:
    """A config.json: the real one with random edits (values replaced, keys dropped), or any JSON."""
    if draw(st.integers(0, 4)) == 0:
        return json.dumps(draw(json_values))
    doc = json.loads(json.dumps(real))
    for _ in range(draw(st.integers(1, 3))):
        paths = [(k,) for k in doc] + [(k, j) for k, v in doc.items() if isinstance(v, dict) for j in v]
        path = draw(st.sampled_from(paths))
        node = doc if len(path) == 1 else doc[path[0]]
        if draw(st.booleans()):
            node.pop(path[-1], None)
        else:
            node[path[-1]] = draw(json_values)
    text = json.dumps(doc)
    if draw(st.integers(0, 6)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@FUZZ
@given(data=st.data(), ipc=st.integers(1, 3))
def test_random_generator_configs_are_a_set_or_one_line(work, pool_generator, data, ipc):
    real = json.loads((pool_generator / "config.json").read_text())
    d = fresh(work / "gen")
    gen = d / "generator"
    shutil.copytree(pool_generator, gen)
    (gen / "config.json").write_text(data.draw(generator_configs(real)))
    code, lines = run_cli("generate", str(gen), "--ipc", str(ipc), "-o", str(d / "set.safetensors"))
    check(code, lines, d / "set.safetensors", per_class=ipc)
