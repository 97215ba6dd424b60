"""Atomic outputs and schema-checked reads: failures leave no half-written file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import SCHEMA_VERSION_KEY, atomic_path, read_json, read_parquet, write_json, write_parquet

SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("n", pa.int32())])


def test_atomic_path_keeps_previous_output_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    write_json({"v": 1}, out)
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("{half")
            raise RuntimeError("killed")
    assert read_json(out) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_path_replaces_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "model"
    for version in ("a", "b"):
        with atomic_path(out) as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text(version)
    assert (out / "weights").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_read_json_errors_name_file_and_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [1, 2')
    with pytest.raises(PipelineError, match=r"bad.json: malformed JSON at line 1"):
        read_json(bad)
    with pytest.raises(PipelineError, match="file not found"):
        read_json(tmp_path / "missing.json")


def test_parquet_schema_is_enforced(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_parquet(pa.table({"n": [1, 2], "id": ["a", "b"]}), path, schema=SCHEMA)
    table = read_parquet(path, schema=SCHEMA)
    assert table.column_names == ["id", "n"] and table.schema.field("n").type == pa.int32()
    assert pq.read_schema(path).metadata[SCHEMA_VERSION_KEY] == b"1"
    with pytest.raises(PipelineError, match=r"missing column 'id'"):
        write_parquet(pa.table({"n": [1]}), tmp_path / "x.parquet", schema=SCHEMA)
    assert not (tmp_path / "x.parquet").exists()
    with pytest.raises(PipelineError, match=r"column 'n' has type string, expected int32"):
        write_parquet(pa.table({"id": ["a"], "n": ["x"]}), tmp_path / "x.parquet", schema=SCHEMA)
    with pytest.raises(PipelineError, match=r"column 'id' has 1 null values"):
        write_parquet(pa.table({"id": [None, "b"], "n": [1, 2]}), tmp_path / "x.parquet",
                      schema=SCHEMA)


def test_truncated_parquet_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_parquet(pa.table({"id": ["a"] * 100, "n": list(range(100))}), path, schema=SCHEMA)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(PipelineError, match="not a readable Parquet file"):
        read_parquet(path)
