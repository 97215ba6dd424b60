"""Shards: building the parallel pairs, writing/reading shard folders, the manifest checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import write_parquet
from hybrid_retrieval.schemas import SHARD, SQUAD_TRAIN, TRANSLATED
from hybrid_retrieval.leakage import assert_no_leakage
from hybrid_retrieval.shards import (MANIFEST, build_parallel_pairs, pair_counts, read_shards,
                                     write_shards)

REPO = Path(__file__).resolve().parents[1]


def squad_table(n: int = 5) -> pa.Table:
    return pa.Table.from_pydict({
        "id": [f"q{i}" for i in range(n)],
        "title": ["Some_Title"] * n,
        "question": [f"What is thing {i}?" for i in range(n)],
        "answer_text": [f"thing {i}" for i in range(n)],
        "answer_start": [0] * n,
        "context": ["ctx"] * n,
        "answer_sentence": [f"Thing {i} is a thing." for i in range(n)],
    }, schema=SQUAD_TRAIN)


def translated_table(lang: str, ids: list[str]) -> pa.Table:
    n = len(ids)
    return pa.Table.from_pydict({
        "id": ids, "lang": [lang] * n,
        "question": [f"[{lang}] question {i}" for i in ids],
        "answer_sentence": [f"[{lang}] answer {i}" for i in ids],
        "title": [f"[{lang}] Título"] * n,
        "question_sha1": ["x"] * n, "answer_sentence_sha1": ["x"] * n,
        "engine": ["test"] * n, "model": ["test"] * n,
    }, schema=TRANSLATED)


def test_build_parallel_pairs_all_ordered_language_pairs():
    table, stats = build_parallel_pairs(squad_table(5), {"pt": translated_table("pt", ["q0", "q1", "q3"])})
    assert table.schema.equals(SHARD)
    assert pair_counts(table) == {"qa:en-en": 5, "qa:en-pt": 3, "qa:pt-en": 3, "qa:pt-pt": 3}
    assert stats == {"blank": 0}
    rows = table.to_pylist()
    en_pt = [r for r in rows if r["query_lang"] == "en" and r["passage_lang"] == "pt"]
    assert en_pt[0] == {"pair_id": "q0", "query_lang": "en", "passage_lang": "pt",
                        "query": "What is thing 0?", "passage": "[pt] answer q0",
                        "source": "qa", "kind": "cross"}
    kinds = {(r["query_lang"], r["passage_lang"]): r["kind"] for r in rows}
    assert kinds == {("en", "en"): "mono", ("pt", "pt"): "mono",
                     ("en", "pt"): "cross", ("pt", "en"): "cross"}


def test_build_parallel_pairs_title_blank_and_errors():
    squad = squad_table(3)
    pt = translated_table("pt", ["q0", "q1"])
    pt = pt.set_column(pt.schema.get_field_index("question"), "question",
                       pa.array(["  ", "[pt] q1"]))
    table, stats = build_parallel_pairs(squad, {"pt": pt}, include_title=True)
    assert stats == {"blank": 1}
    assert pair_counts(table)["qa:pt-pt"] == 1
    passages = {(r["pair_id"], r["passage_lang"]): r["passage"] for r in table.to_pylist()}
    assert passages[("q0", "en")] == "Some Title. Thing 0 is a thing."
    assert passages[("q1", "pt")] == "[pt] Título. [pt] answer q1"

    with pytest.raises(PipelineError, match="'lang'"):
        build_parallel_pairs(squad, {"de": pt})
    dupes = translated_table("pt", ["q0", "q0"])
    with pytest.raises(PipelineError, match="duplicated"):
        build_parallel_pairs(squad, {"pt": dupes})
    with pytest.raises(PipelineError, match="missing column 'question'"):
        build_parallel_pairs(squad, {"pt": pt.drop_columns(["question"])})


def test_write_read_roundtrip_manifest_and_determinism(tmp_path):
    table, _ = build_parallel_pairs(squad_table(50), {"pt": translated_table("pt", [f"q{i}" for i in range(40)])})
    manifest = write_shards(table, tmp_path / "a", rows_per_shard=60, row_group_size=16)
    write_shards(table, tmp_path / "b", rows_per_shard=60, row_group_size=16)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == [MANIFEST] + [f"part-{i:05d}.parquet" for i in range(3)]
    assert [s["rows"] for s in manifest["shards"]] == [60, 60, 50]
    assert manifest["pair_counts"] == {"qa:en-en": 50, "qa:en-pt": 40, "qa:pt-en": 40, "qa:pt-pt": 40}
    assert json.loads((tmp_path / "a" / MANIFEST).read_text()) == manifest
    for name in files:  # two runs, byte-identical files
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    meta = pq.ParquetFile(tmp_path / "a" / "part-00000.parquet").metadata
    assert meta.num_row_groups == 4 and meta.row_group(0).column(0).compression == "ZSTD"
    assert read_shards(tmp_path / "a").equals(table)


def test_shards_load_with_datasets(tmp_path):
    from datasets import load_dataset

    table, _ = build_parallel_pairs(squad_table(10), {"pt": translated_table("pt", ["q1", "q2"])})
    write_shards(table, tmp_path / "s", rows_per_shard=8)
    files = sorted(str(p) for p in (tmp_path / "s").glob("part-*.parquet"))
    dataset = load_dataset("parquet", data_files=files, split="train",
                           cache_dir=str(tmp_path / "cache"))
    assert dataset.num_rows == len(table)
    assert dataset.column_names == SHARD.names
    assert dataset[0] == table.slice(0, 1).to_pylist()[0]


def test_read_shards_detects_corruption_and_schema_mismatch(tmp_path):
    table, _ = build_parallel_pairs(squad_table(10), {})
    write_shards(table, tmp_path / "s", rows_per_shard=4)
    shard = tmp_path / "s" / "part-00001.parquet"
    original = shard.read_bytes()
    shard.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(PipelineError, match="part-00001.parquet: sha256"):
        read_shards(tmp_path / "s")
    shard.write_bytes(original)
    shard.unlink()
    with pytest.raises(PipelineError, match="part-00001.parquet: shard listed"):
        read_shards(tmp_path / "s")
    shard.write_bytes(original)

    # A shard of another schema, with a manifest that matches its bytes: the schema check names it.
    other = table.drop_columns(["kind"])
    pq.write_table(other.slice(4, 4), shard, compression="zstd")
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    from hybrid_retrieval.sources import sha256_file
    manifest["shards"][1]["sha256"] = sha256_file(shard)
    (tmp_path / "s" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PipelineError, match="part-00001.parquet: schema"):
        read_shards(tmp_path / "s")
    # A manifest describing another schema is named too.
    manifest["schema"] = manifest["schema"][:-1]
    (tmp_path / "s" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PipelineError, match="manifest.json: field 'schema'"):
        read_shards(tmp_path / "s")
    with pytest.raises(PipelineError, match="manifest not found"):
        read_shards(tmp_path)


def test_write_shards_rejects_bad_arguments(tmp_path):
    table, _ = build_parallel_pairs(squad_table(3), {})
    for bad in (0, -1, 2.5, True):
        with pytest.raises(PipelineError, match="rows_per_shard"):
            write_shards(table, tmp_path / "s", rows_per_shard=bad)
    with pytest.raises(PipelineError, match="missing column 'kind'"):
        write_shards(table.drop_columns(["kind"]), tmp_path / "s", rows_per_shard=2)
    assert not (tmp_path / "s").exists()


def test_assert_no_leakage():
    table, _ = build_parallel_pairs(squad_table(5), {})
    assert_no_leakage(table, [])
    assert_no_leakage(table, ["Something else entirely."])
    with pytest.raises(PipelineError) as info:
        assert_no_leakage(table, ["  what is thing 3?", "What   is thing 3?", "Thing 1 is a thing."])
    message = str(info.value)
    assert "1 rows in column 'query'" in message and "What is thing 3?" in message
    assert "1 rows in column 'passage'" in message
    # "The same text" is case-folded everywhere (issue 13): a case-only variant leaks too.
    with pytest.raises(PipelineError, match="1 rows in column 'query'"):
        assert_no_leakage(table, ["WHAT IS THING 3?"])


def test_build_shards_stage(tmp_path):
    squad_path = tmp_path / "squad.parquet"
    write_parquet(squad_table(6), squad_path, schema=SQUAD_TRAIN)
    translated = tmp_path / "translated"
    write_parquet(translated_table("pt", ["q0", "q2", "q4"]), translated / "pt.parquet", schema=TRANSLATED)
    params = tmp_path / "params.yaml"
    params.write_text("shards:\n  rows_per_shard: 5\n  row_group_size: 2\n  include_title: false\n")
    out = tmp_path / "shards"
    cmd = [sys.executable, str(REPO / "stages/build_shards.py"), "--params", str(params),
           "--squad", str(squad_path), "--translated", str(translated), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "15 rows" in done.stdout and "en-pt 3" in done.stdout
    assert len(read_shards(out)) == 15
    by_file = subprocess.run(cmd[:-4] + ["--translated", str(translated / "pt.parquet"),
                                         "--out", str(tmp_path / "by_file")],
                             capture_output=True, text=True, check=False)
    assert by_file.returncode == 0, by_file.stderr
    assert (tmp_path / "by_file/part-00000.parquet").read_bytes() == \
        (out / "part-00000.parquet").read_bytes()
    params.write_text("shards:\n  rows_per_shard: 0\n  row_group_size: 2\n  include_title: false\n")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "shards.rows_per_shard" in done.stderr
