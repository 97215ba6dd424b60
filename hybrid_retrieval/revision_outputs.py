"""An evaluation output read from a file, the workspace, a Git revision or a DVC experiment.

* input: a reference (a file path, ``workspace``, a Git revision or an experiment name), a path
  inside the repository (e.g. ``metrics/eval_per_query.parquet``) and the repository;
* output: the file's bytes (:func:`read_output`, through ``dvc.api.open`` for revisions, so that
  DVC-cached outputs are read too) or its schema-checked per-query table
  (:func:`read_per_query`).

A missing file is reported with the ``dvc.yaml`` stage that writes it (``foreach`` items named
as DVC names them, e.g. ``evaluate@base``), so that the error says what to run.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from .errors import PipelineError, one_line
from .evaluation import PER_QUERY
from .io import conform
from .stage_deps import load_stages


def _written_by(path: str, repo: str | os.PathLike) -> str:
    """``"; stage X writes it (dvc repro X)"`` for an output of ``repo``'s dvc.yaml, else ``""``."""
    try:
        stages = load_stages(Path(repo) / "dvc.yaml", expand=True)
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return ""
    wanted = os.path.normpath(os.path.relpath(os.path.abspath(path), os.path.abspath(repo)))
    for stage in stages:
        if any(os.path.normpath(out) == wanted for out in stage.outs):
            return f"; stage '{stage.name}' writes it (dvc repro {stage.name})"
    return ""


def read_output(ref: str, path: str, *, repo: str | os.PathLike = ".") -> bytes:
    """Bytes of ``path`` as of ``ref``: a file (when ``ref`` is an existing path), ``workspace``
    (``repo/path``), or any Git revision / DVC experiment name (via ``dvc.api.open``, which
    also reads DVC-cached outputs such as ``metrics/eval_per_query.parquet``)."""
    if os.path.isfile(ref):
        return Path(ref).read_bytes()
    if ref.endswith((".parquet", ".json")):
        # A path, not a revision: say which file is missing and which stage writes it.
        raise PipelineError(f"{ref}: file not found{_written_by(ref, repo)}")
    if ref == "workspace":
        full = Path(repo) / path
        if not full.is_file():
            raise PipelineError(f"{full}: file not found (workspace)")
        return full.read_bytes()
    import dvc.api   # imported here: dvc is slow to import and only this path needs it
    try:
        with dvc.api.open(path, repo=str(repo), rev=ref, mode="rb") as handle:
            return handle.read()
    except Exception as exc:  # noqa: BLE001 - dvc raises many types; report them as one line
        raise PipelineError(f"cannot read '{path}' at revision/experiment '{ref}' of "
                            f"{repo}: {type(exc).__name__}: {one_line(exc)} (is '{ref}' a "
                            f"file, 'workspace', a Git revision or an experiment name? Is "
                            f"the output in the DVC cache?)") from None


def read_per_query(ref: str, path: str = "metrics/eval_per_query.parquet", *,
                   repo: str | os.PathLike = ".") -> pa.Table:
    """The ``PER_QUERY`` table of ``ref`` (see :func:`read_output`), schema-checked."""
    data = read_output(ref, path, repo=repo)
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise PipelineError(f"{ref}:{path}: not a readable Parquet file "
                            f"({one_line(exc)})") from None
    return conform(table, PER_QUERY, what=f"{ref}:{path}")
