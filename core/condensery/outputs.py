"""Where a command may write: one rule for every command that writes, and caches that lose nothing.

The rule (README, "What a command may overwrite"). Before writing, every command (``run``,
``eval``, ``generate``, ``export``, ``experts``, ``report``, ``analyze``) calls
``claim_output`` on its output, which refuses, in one line naming both paths and the way out:

- an output that *is or lies inside* what the command reads (a set, a run, a generator), or
  a generator folder: writing there would change the input or the generator's weights, so
  no ``--force`` opens it;
- an output inside a run directory that is not the command's own, where it would replace
  one of that run's entries (``metrics.json``, ``checkpoints/``...); a new name beside them
  (``runs/x/eval-cifar``) is fine;
- an existing output that condensery did not write *for this same purpose*, unless
  ``--force``.

How condensery knows what it wrote, and for which purpose: by the mark it writes into
everything it writes, read here with the standard library only (no torch, no unpickling):

- a ``.safetensors`` file: its header metadata key (``condensery``: a set; ``condensery.expert``:
  an expert; ``condensery_teacher``: a teacher);
- a ``.json`` file: its ``format`` key (``condensery.<purpose>/<version>``);
- a ``.png`` picture: a ``tEXt`` chunk ``Software`` that starts with ``condensery``;
- a ``.md`` report: its first line ``# condensery report``;
- a folder: the file that marks it: ``config.json`` of format ``condensery.generator/*`` (a
  generator), ``set.json`` (an export; ``.export.json`` while one is written), ``eval.json`` (an evaluation; before it existed,
  a ``metrics.json`` with a ``source``), ``analysis.json`` (an analysis), ``recipe.yaml`` (a
  run directory); a folder of expert shards only is an experts folder, one holding only
  what a run writes (``experts/``, ``logs/``...) a run directory yet without its recipe; a
  folder holding only hidden files (``.lock``) counts as empty.

A damaged or foreign file in a cache condensery fills (expert shards, cached teachers) is
never replaced silently: ``move_aside`` renames it ``NAME.corrupt-<UTC time>`` and says so
on stderr, and the cache fills the slot again.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from .api.errors import UserError

__all__ = ["claim_output", "purpose_of", "move_aside", "run_lock", "check_run_identity", "PNG_SOFTWARE", "PNG_METADATA",
           "RUN_ENTRIES"]

#: the ``Software`` text every PNG condensery writes carries (its mark)
PNG_SOFTWARE = "condensery"
#: ``metadata=`` for matplotlib's ``savefig``: the mark in a figure
PNG_METADATA = {"Software": PNG_SOFTWARE}
#: what a run directory holds; another command writing over one of them would replace the run's
RUN_ENTRIES = ("recipe.yaml", "metrics.json", "synthetic.safetensors", "grid.png", "curves.png",
               "last-sane.safetensors", "checkpoints", "logs", "trackers", "generator", ".lock")

_WHAT = {"run": "a run directory", "eval": "an evaluation folder", "export": "an export folder",
         "analysis": "an analysis folder", "generator": "a generator folder", "experts": "an experts folder",
         "set": "a synthetic set", "expert": "an expert shard", "teacher": "a teacher", "picture": "a picture",
         "report": "a report", "metrics": "a metrics file"}
#: what ``--force`` never replaces for another purpose: a run's results, a generator's weights
_PROTECTED = ("run", "generator")
_SAFETENSORS_KEYS = {"condensery": "set", "condensery.expert": "expert", "condensery_teacher": "teacher"}
_FOLDER_MARKS = (("config.json", "generator"), ("set.json", "export"), (".export.json", "export"), ("eval.json", "eval"),
                 ("analysis.json", "analysis"))
_JSON_FORMATS = {"synthetic": "set", "export": "export", "eval": "eval", "generator": "generator",
                 "expert": "expert", "analysis": "analysis"}


def describe(purpose: str | None) -> str:
    """``purpose`` in words (``"run"`` -> ``"a run directory"``)."""
    return _WHAT.get(purpose or "", "files condensery did not write")


def _json_format(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read(1 << 24))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    fmt = doc.get("format")
    if isinstance(fmt, str) and fmt.startswith("condensery."):
        return _JSON_FORMATS.get(fmt.split(".", 1)[1].split("/", 1)[0])
    if path.name == "metrics.json" and isinstance(doc.get("results"), list):
        return "metrics"
    if path.name == "analysis.json" and "run_dir" in doc:
        return "analysis"
    return None


def _safetensors_purpose(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (size,) = struct.unpack("<Q", head)
            if size > 100_000_000:
                return None
            header = json.loads(f.read(size))
    except (OSError, ValueError, RecursionError):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        return None
    return next((p for key, p in _SAFETENSORS_KEYS.items() if key in meta), None)


def _png_software(path: Path) -> str | None:
    """The ``Software`` text of a PNG (chunks read up to the first image data)."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                size, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND") or size > 1 << 20:
                    return None
                body = f.read(size + 4)[:size]
                if kind == b"tEXt" and body.startswith(b"Software\0"):
                    return body[9:].decode("latin-1")
    except OSError:
        return None


def _visible(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []


def _marked(folder: Path) -> str | None:
    """The purpose a folder's mark file states (no listing of the folder)."""
    for name, purpose in _FOLDER_MARKS:
        if (folder / name).is_file() and _json_format(folder / name) == purpose:
            return purpose
    if (folder / "recipe.yaml").is_file():
        metrics = folder / "metrics.json"
        return "eval" if metrics.is_file() and _has_source(metrics) else "run"
    return None


def purpose_of(path: str | os.PathLike[str]) -> str | None:
    """What condensery wrote ``path`` for (``"run"``, ``"set"``...), ``"empty"`` for an empty
    folder, None for anything without condensery's mark (or absent)."""
    path = Path(path)
    if path.is_dir():
        marked = _marked(path)
        if marked:
            return marked
        entries = _visible(path)
        if not entries:
            return "empty"
        if all(p.name.startswith("expert_") for p in entries):
            return "experts"
        if all(p.name in (*RUN_ENTRIES, "experts", "analysis") for p in entries):
            return "run"  # a run without its recipe yet (``condensery experts`` first): the identity check decides
        return None
    if not path.is_file():
        return None
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _safetensors_purpose(path)
    if suffix == ".json":
        return _json_format(path)
    if suffix == ".png":
        software = _png_software(path)
        return "picture" if software and software.startswith(PNG_SOFTWARE) else None
    if suffix == ".md":
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return "report" if f.readline().startswith("# condensery report") else None
        except OSError:
            return None
    return None


def _has_source(metrics: Path) -> bool:
    try:
        doc = json.loads(metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and "source" in doc


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def claim_output(path: str | os.PathLike[str], purpose: str, *, force: bool = False,
                 reads: Iterable[str | os.PathLike[str]] = (), own_run: str | os.PathLike[str] | None = None,
                 flag: str = "-o") -> Path:
    """Refuse (``UserError``, one line) an output the write rule forbids; return ``path``.

    ``purpose`` is what the command writes (a key of the module's list: ``"eval"``, ``"set"``...);
    a folder output is one whose purpose is a folder's. ``reads`` are the files and folders
    the command reads; ``own_run`` the run directory the command writes as its own (``analyze``
    and ``experts`` write inside their run). ``force`` opens only the last rule: replacing
    what condensery did not write for ``purpose``.
    """
    path = Path(path)
    here = _absolute(path)
    folder_output = purpose in ("run", "eval", "export", "analysis", "generator", "experts")
    for read in reads:
        if _inside(here, _absolute(Path(read))):
            relation = "is" if here == _absolute(Path(read)) else "lies inside"
            raise UserError(f"{flag} '{path}' {relation} '{read}', which this command reads; choose another path")
    own = _absolute(Path(own_run)) if own_run is not None else None
    for parent in [here, *here.parents]:
        if parent == own:
            break
        kind = _marked(parent) if parent.is_dir() else None
        if kind == "generator" and not (purpose == "generator" and parent == here):
            raise UserError(f"{flag} '{path}' {'is' if parent == here else 'lies inside'} the generator folder "
                            f"'{parent}', whose weights it would change; choose another path")
        ran = any((parent / n).exists() for n in (".lock", "metrics.json", "synthetic.safetensors", "eval.json"))
        if kind in ("run", "eval") and parent != here and ran:  # a project folder holding a recipe.yaml is no run
            entry = here.relative_to(parent).parts[0]
            if entry in RUN_ENTRIES or entry == "eval.json":
                raise UserError(f"{flag} '{path}' lies inside '{parent / entry}' of the run directory '{parent}'; "
                                "choose another path")
    if not os.path.lexists(here):
        return path
    if folder_output and not here.is_dir():
        raise UserError(f"{flag} '{path}' is a file, not a folder; choose another path")
    if not folder_output and here.is_dir():
        raise UserError(f"{flag} '{path}' is a folder; give a file path")
    found = purpose_of(here)
    if found in (purpose, "empty"):
        return path
    if force and found not in _PROTECTED:
        return path
    marks = (*_FOLDER_MARKS, ("recipe.yaml", "run"), ("recipe.yaml", "eval"))
    mark = next((here / n for n, p in marks if p == found and (here / n).is_file()), here) if here.is_dir() else here
    way = ("pass --force to replace it, or choose another path" if found not in _PROTECTED
           else "choose another path (--force never replaces a run directory or a generator)")
    shown = f"is {describe(found)} (marked by '{mark}')" if found and mark != here else (
        f"is {describe(found)}" if found else
        "holds files condensery did not write" if here.is_dir() else "exists and condensery did not write it")
    raise UserError(f"{flag} '{path}' {shown}, not {describe(purpose)}; {way}")


def move_aside(path: str | os.PathLike[str], why: str) -> Path:
    """Rename a damaged or foreign file of a cache to ``NAME.corrupt-<UTC time>`` and say so on stderr.

    The cache then fills the slot again; the file stays for the user to inspect or delete.
    """
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while os.path.lexists(target):
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(path, target)
    print(f"warning: '{path}' is {why}; moved it aside to '{target}' and filling the cache again",
          file=sys.stderr, flush=True)
    return target


def run_lock(run_dir: str | os.PathLike[str], take: bool = True) -> AbstractContextManager[None]:
    """The exclusive lock ``condensery run`` holds on its run directory, for every command that
    writes one (two writers at once would interleave their files); a second holder is refused
    in one line naming the first."""
    from ._engine.identity import run_lock as lock

    return lock(Path(run_dir), take)


def check_run_identity(run_dir: str | os.PathLike[str], resolved: dict[str, Any], registry: Any,
                       force: bool = False) -> bool:
    """Whether ``run_dir`` holds a finished run of this resolved recipe; a run of another recipe
    (or a folder the write rule forbids) is a one-line ``UserError`` (``condensery run``'s check)."""
    from ._engine.identity import check_identity

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"-o {run_dir} is a file, not a directory; choose another -o")
    if run_dir.is_dir() and purpose_of(run_dir) is None:  # run files without a recipe are named by the identity check
        finished = check_identity(run_dir, resolved, registry, force)
        claim_output(run_dir, "run", force=force)
        return finished
    claim_output(run_dir, "run", force=force)  # not another command's folder, nor inside a generator or a run
    return check_identity(run_dir, resolved, registry, force)
