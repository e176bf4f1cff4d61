"""Reading a local ``huggingface`` location: a ``save_to_disk`` folder or parquet files -> arrow tables per split."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..api.errors import UserError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HINT = ("condensery never downloads: save the dataset locally first, e.g. "
         "datasets.load_dataset(NAME).save_to_disk(DIR), and give DIR")


def local_path(text: str, key: str) -> Path:
    """``text`` as an existing local path, or a one-line refusal (never a download)."""
    import os

    if _URL.match(text):
        raise UserError(f"{key} '{text}' is a URL, not a local path; {_HINT}")
    path = Path(os.path.expandvars(os.path.expanduser(text)))
    if not path.exists():
        hub = bool(re.fullmatch(r"[\w.-]+/[\w.-]+", text)) and not text.startswith(".")
        what = "is not a local path (a Hub dataset id?)" if hub else "does not exist"
        raise UserError(f"{key} '{text}' {what}; {_HINT}")
    return path


#: one split: (arrow table, the datasets ``features`` JSON if known, where it came from)
Part = tuple[Any, dict | None, Path]


def _parquet_features(pq_file) -> dict | None:
    meta = pq_file.schema_arrow.metadata or {}
    raw = meta.get(b"huggingface")
    if not raw:
        return None
    try:
        return (json.loads(raw).get("info") or {}).get("features")
    except (json.JSONDecodeError, AttributeError):
        return None


def _info_features(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "dataset_info.json").read_text()).get("features")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _read_parquet(files: list[Path]) -> Part:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, features = [], None
    for f in files:
        try:
            pf = pq.ParquetFile(f)
            tables.append(pf.read())
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"'{f}' is not a readable parquet file ({str(exc).splitlines()[0]})") from None
        features = features or _parquet_features(pf)
    try:
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    except pa.ArrowException as exc:
        raise UserError(f"the parquet files of '{files[0].parent}' have different columns ({str(exc).splitlines()[0]})") from None
    return table, features, files[0] if len(files) == 1 else files[0].parent


def _read_saved(folder: Path) -> Part:
    """One split written by ``Dataset.save_to_disk``."""
    try:
        import datasets
    except ImportError:
        datasets = None
    if datasets is not None:
        try:
            ds = datasets.load_from_disk(str(folder))
        except Exception as exc:  # noqa: BLE001 - any failure to read the folder is the folder's
            raise UserError(f"'{folder}' is not a readable datasets folder ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        return ds.with_format("arrow")[:], _info_features(folder), folder
    import pyarrow as pa

    try:
        state = json.loads((folder / "state.json").read_text())
        files = [folder / f["filename"] for f in state["_data_files"]]
        tables = []
        for f in files:
            with pa.memory_map(str(f)) as source:
                tables.append(pa.ipc.open_stream(source).read_all())
    except (OSError, KeyError, TypeError, json.JSONDecodeError, pa.ArrowException) as exc:
        raise UserError(f"'{folder}' is not a readable datasets folder ({type(exc).__name__}); "
                        "write it again with save_to_disk") from None
    return (pa.concat_tables(tables) if len(tables) > 1 else tables[0]), _info_features(folder), folder


def _split_of(rel: Path, names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in rel.parts[:-1] or re.match(rf"{re.escape(name)}([-_.]|$)", rel.name):
            return name
    return None


def read_location(path: Path, names: tuple[str, ...]) -> tuple[dict[str | None, Part], list[str]]:
    """The splits among ``names`` at ``path`` (``None``: one unnamed split), and every split name there."""
    if path.is_file():
        if path.suffix != ".parquet":
            raise UserError(f"'{path}' is not a .parquet file; give a parquet file, a folder of them, "
                            "or a folder written by save_to_disk")
        return {None: _read_parquet([path])}, []
    if (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        except (OSError, KeyError, TypeError, json.JSONDecodeError):
            raise UserError(f"'{path / 'dataset_dict.json'}' is damaged; write the dataset again with save_to_disk") from None
        return {str(s): _read_saved(path / str(s)) for s in splits if str(s) in names}, [str(s) for s in splits]
    if (path / "state.json").is_file():
        return {None: _read_saved(path)}, []
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    if not files:
        raise UserError(f"'{path}' holds neither a save_to_disk dataset (dataset_dict.json or state.json) "
                        "nor .parquet files")
    groups: dict[str | None, list[Path]] = {}
    for f in files:
        groups.setdefault(_split_of(f.relative_to(path), names), []).append(f)
    if set(groups) != {None}:
        groups.pop(None, None)  # files of other splits (e.g. validation) when named splits exist
    return {k: _read_parquet(v) for k, v in groups.items()}, [k for k in groups if k]
