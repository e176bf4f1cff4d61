"""What the file-based sources share: the root path, a fingerprint of the files, the not-found error."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..api.errors import UserError


def _fingerprint_files(paths: list[Path]) -> str:
    h = hashlib.sha1()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _expand(root: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(root)))


def _not_found(name: str, root: Path, layout: str) -> UserError:
    return UserError(f"{name} files not found under '{root}'; expected {layout} (condensery never downloads)")
