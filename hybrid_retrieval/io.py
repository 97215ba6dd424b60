"""Atomic outputs and schema-checked Parquet/JSON I/O.

Every stage output is first written to a temporary path *in the same folder* and renamed into
place only when it is complete, so a stage that fails or is killed leaves the previous output
intact (or nothing), never a half-written file.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import PipelineError, one_line
from .text import sanitize_text

SCHEMA_VERSION_KEY = b"hybrid_retrieval.schema_version"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary folders that killed writers of ``path`` left beside it.

    :func:`atomic_path` names its temporary folder ``.<name>.<pid>.<random>.tmp``; a process
    killed with SIGKILL cannot remove it, so the next writer of the same path does, when the
    process that made it is gone. Returns the folders removed.
    """
    path = Path(path)
    removed = []
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = stale.name[len(path.name) + 2:].split(".", 1)[0]
        if stale.is_dir() and pid.isdigit() and int(pid) != os.getpid() \
                and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    Works for files and folders: the caller creates whatever it wants at the yielded path.
    On an exception the temporary path is removed and ``path`` is left untouched. A process
    killed in the block (SIGKILL) leaves ``path`` untouched too, or, in the instant between
    the two renames that replace a folder, absent; never half-written. Its temporary folder
    is removed by the next writer of ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                dir=path.parent))
    tmp_target = tmp / path.name
    try:
        yield tmp_target
        if not tmp_target.exists():
            raise RuntimeError(f"{path}: nothing was written to the temporary path {tmp_target}")
        if path.is_dir() and not path.is_symlink():
            # A folder cannot be replaced in one rename: move the old one aside first.
            old = tmp / (path.name + ".old")
            os.replace(path, old)
        os.replace(tmp_target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as pretty, key-sorted JSON (stable diffs for ``dvc metrics diff``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                       encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or malformed file raises :class:`PipelineError` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(
            f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if _SURROGATE_ESCAPE.search(text):
        # A lone "\udXXX" escape decodes to a string that is not valid UTF-8 (Arrow, tokenizers
        # and translation engines refuse it): replaced by U+FFFD, as the UTF-8 decoder would.
        value = _sanitize_strings(value)
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _sanitize_strings(value: Any) -> Any:
    if isinstance(value, str):
        return sanitize_text(value)
    if isinstance(value, list):
        return [_sanitize_strings(v) for v in value]
    if isinstance(value, dict):
        return {_sanitize_strings(k): _sanitize_strings(v) for k, v in value.items()}
    return value


def with_schema_version(table: pa.Table, version: int) -> pa.Table:
    """Return ``table`` with the schema version stored in its Parquet metadata."""
    meta = dict(table.schema.metadata or {})
    meta[SCHEMA_VERSION_KEY] = str(version).encode()
    return table.replace_schema_metadata(meta)


def write_parquet(table: pa.Table, path: str | os.PathLike, *, schema: pa.Schema,
                  version: int = 1, compression: str = "zstd",
                  row_group_size: int | None = None) -> None:
    """Check ``table`` against ``schema`` and write it atomically (zstd, schema version in metadata).

    Column order follows ``schema``; a missing column or a wrong type raises :class:`PipelineError`.
    """
    table = conform(table, schema, what=str(path))
    with atomic_path(path) as tmp:
        pq.write_table(with_schema_version(table, version), tmp, compression=compression,
                       row_group_size=row_group_size)


def read_parquet(path: str | os.PathLike, *, schema: pa.Schema | None = None,
                 nonempty: bool = False) -> pa.Table:
    """Read a Parquet file; with ``schema``, check that its columns and types match.

    Unreadable, truncated or mismatching files raise :class:`PipelineError` naming the file;
    so does a file without rows when ``nonempty`` is set.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: file not found" if not path.exists() else
                            f"{path}: is a folder, expected a Parquet file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PipelineError(f"{path}: not a readable Parquet file ({one_line(exc)})") from None
    if schema is not None:
        table = conform(table, schema, what=str(path))
    if nonempty and table.num_rows == 0:
        raise PipelineError(f"{path}: no rows, expected at least one")
    return table


def conform(table: pa.Table, schema: pa.Schema, *, what: str) -> pa.Table:
    """Select and cast ``table``'s columns to ``schema``, naming ``what`` and the field on mismatch."""
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            raise PipelineError(
                f"{what}: missing column '{field.name}' (expected {field.type}); "
                f"found {table.column_names}")
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise PipelineError(f"{what}: column '{field.name}' has type {column.type}, "
                                    f"expected {field.type}") from None
        if not field.nullable and column.null_count:
            raise PipelineError(f"{what}: column '{field.name}' has {column.null_count} null "
                                f"values, expected none")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())
