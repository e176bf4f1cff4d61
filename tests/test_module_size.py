"""The big modules read as one job each: no module over 300 lines without a reason.

Every ``.py`` under ``core/`` and ``plugins/`` is at most ``LIMIT`` lines unless its module
docstring has a line starting with ``Size:`` that says why it is one job that splitting would hurt.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 300
#: modules over the limit with no reason yet; an entry here must name the issue that splits it
KNOWN: set[str] = set()


def modules() -> list[Path]:
    return sorted(p for top in ("core", "plugins") for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


def size_reason(path: Path) -> str | None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return next((line.strip() for line in doc.splitlines() if line.strip().startswith("Size:")), None)


def test_modules_are_small_or_say_why() -> None:
    found = modules()
    assert len(found) > 20, "no modules found: the test looks in the wrong place"
    too_big = []
    for path in found:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        rel = path.relative_to(ROOT).as_posix()
        if lines > LIMIT and rel not in KNOWN and size_reason(path) is None:
            too_big.append(f"{rel}: {lines} lines")
    assert not too_big, (f"modules over {LIMIT} lines: split each into modules with one job, or give the reason in a "
                         "docstring line starting with 'Size:'\n" + "\n".join(too_big))


def test_a_size_reason_says_something() -> None:
    for path in modules():
        reason = size_reason(path)
        if reason is not None:
            assert len(reason.removeprefix("Size:").strip()) > 10, f"{path}: 'Size:' needs a reason"


def test_known_exceptions_are_still_exceptions() -> None:
    for rel in KNOWN:
        path = ROOT / rel
        assert path.is_file(), f"{rel} is gone: remove it from KNOWN"
        assert len(path.read_text(encoding="utf-8").splitlines()) > LIMIT, f"{rel} is small now: remove it from KNOWN"
