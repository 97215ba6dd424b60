"""Training pairs as Parquet shards: building them, writing them with a manifest, reading them back.

A shard folder (``data/shards/parallel/``, later ``data/shards/domain/``) holds
``part-00000.parquet``, ``part-00001.parquet``, ... (schema :data:`schemas.SHARD`, zstd, a fixed
number of rows per shard, small row groups so that a reader can stream them) and a
``manifest.json`` that lists the schema, the row count of every (source, query_lang,
passage_lang) and the SHA-256 of every shard. :func:`read_shards` checks all of it, so a
truncated, edited or foreign shard is reported by name instead of silently training on it.

The shards are plain Parquet: ``datasets.load_dataset("parquet", data_files=...)`` reads them too.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .config import param
from .errors import PipelineError
from .io import atomic_path, conform, read_json, read_parquet, with_schema_version, write_json
from .schemas import SCHEMA_VERSION, SHARD, SQUAD_TRAIN, TRANSLATED
from .sources import sha256_file

MANIFEST = "manifest.json"
SHARD_PATTERN = "part-{:05d}.parquet"
MONO, CROSS = "mono", "cross"


@dataclass(frozen=True)
class ShardsConfig:
    """``params.yaml: shards``: how :func:`write_shards` cuts a table (and the passage text)."""

    rows_per_shard: int = param(help="rows per Parquet shard file", low=1)
    row_group_size: int = param(help="rows per Parquet row group (the streaming unit)", low=1)
    include_title: bool = param(False, help="parallel shards: passage = '<title>. <answer "
                                            "sentence>'", required=True)


def pair_kind(query_lang: str, passage_lang: str) -> str:
    """``mono`` when the query and the passage are in the same language, else ``cross``."""
    return MONO if query_lang == passage_lang else CROSS


# ---------------------------------------------------------------------------------------------
# Building the parallel QA pairs
# ---------------------------------------------------------------------------------------------

def _passage_texts(sentences: pa.ChunkedArray, titles: pa.ChunkedArray,
                   include_title: bool) -> list[str]:
    if not include_title:
        return sentences.to_pylist()
    # SQuAD titles are Wikipedia page names ("University_of_Notre_Dame").
    return [f"{title.replace('_', ' ')}. {sentence}"
            for title, sentence in zip(titles.to_pylist(), sentences.to_pylist())]


def _language_view(table: pa.Table, include_title: bool) -> dict[str, tuple[str, str]]:
    """``id -> (question, passage)`` for one language, without rows whose text is blank."""
    ids = table.column("id").to_pylist()
    questions = table.column("question").to_pylist()
    passages = _passage_texts(table.column("answer_sentence"), table.column("title"), include_title)
    view = {}
    for pair_id, question, passage in zip(ids, questions, passages):
        if question.strip() and passage.strip():
            view[pair_id] = (question, passage)
    return view


def _check_unique_ids(table: pa.Table, what: str) -> None:
    ids = table.column("id")
    if len(pc.unique(ids)) != len(ids):
        counts = Counter(ids.to_pylist())
        dupes = [i for i, n in counts.items() if n > 1]
        raise PipelineError(f"{what}: column 'id' has {len(dupes)} duplicated values "
                            f"(e.g. {dupes[:3]}), expected unique SQuAD ids")


def build_parallel_pairs(squad: pa.Table, translated: Mapping[str, pa.Table], *,
                         include_title: bool = False, source: str = "qa",
                         squad_name: str = "squad train",
                         translated_names: Mapping[str, str] | None = None,
                         ) -> tuple[pa.Table, dict[str, int]]:
    """Every ordered language pair of the SQuAD training pairs, as one :data:`SHARD` table.

    Args:
        squad: English SQuAD train (schema :data:`SQUAD_TRAIN`): query = ``question``,
            passage = ``answer_sentence``.
        translated: language code -> that language's translation (schema :data:`TRANSLATED`),
            whose ``id`` is the SQuAD id. English may not be among them.
        include_title: prefix each passage with its (translated) article title.
        source: value of the ``source`` column.
        squad_name: how errors name the SQuAD table.
        translated_names: how errors name each translation (its file), by language.

    Returns:
        The table, one row per (pair_id, query_lang, passage_lang) for which both sides exist
        and are non-blank, sorted by (query_lang, passage_lang, pair_id) so that equal inputs
        give equal tables; and ``{"blank": n}``, the number of (language, id) entries skipped
        because a question or a passage was blank.
    """
    squad = conform(squad, SQUAD_TRAIN, what=squad_name)
    _check_unique_ids(squad, squad_name)
    squad_en = pa.table({"id": squad["id"], "question": squad["question"],
                         "answer_sentence": squad["answer_sentence"], "title": squad["title"]})
    views = {"en": _language_view(squad_en, include_title)}
    for lang, table in sorted(translated.items()):
        what = (translated_names or {}).get(lang, f"translated '{lang}'")
        if lang == "en":
            raise PipelineError(f"{what}: English is the SQuAD source, not a translation")
        table = conform(table, TRANSLATED, what=what)
        langs = set(table.column("lang").to_pylist())
        if langs - {lang}:
            raise PipelineError(f"{what}: column 'lang' holds {sorted(langs)}, expected only '{lang}'")
        _check_unique_ids(table, what)
        views[lang] = _language_view(table, include_title)
    blank = len(squad) + sum(len(t) for t in translated.values()) - sum(map(len, views.values()))

    columns: dict[str, list[str]] = {name: [] for name in SHARD.names}
    for query_lang in sorted(views):
        for passage_lang in sorted(views):
            queries, passages = views[query_lang], views[passage_lang]
            kind = pair_kind(query_lang, passage_lang)
            for pair_id in sorted(queries.keys() & passages.keys()):
                columns["pair_id"].append(pair_id)
                columns["query_lang"].append(query_lang)
                columns["passage_lang"].append(passage_lang)
                columns["query"].append(queries[pair_id][0])
                columns["passage"].append(passages[pair_id][1])
                columns["source"].append(source)
                columns["kind"].append(kind)
    return pa.Table.from_pydict(columns, schema=SHARD), {"blank": blank}


def pair_counts(table: pa.Table) -> dict[str, int]:
    """Rows per ``source:query_lang-passage_lang`` (e.g. ``qa:en-pt``), keys sorted."""
    counts = Counter(zip(table.column("source").to_pylist(), table.column("query_lang").to_pylist(),
                         table.column("passage_lang").to_pylist()))
    return {f"{s}:{q}-{p}": n for (s, q, p), n in sorted(counts.items())}


# ---------------------------------------------------------------------------------------------
# Writing and reading shard folders
# ---------------------------------------------------------------------------------------------

def _schema_description(schema: pa.Schema) -> list[dict[str, object]]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def write_shards(table: pa.Table, out_dir: str | os.PathLike, rows_per_shard: int, *,
                 row_group_size: int = 4096, schema: pa.Schema = SHARD,
                 compression: str = "zstd") -> dict:
    """Write ``table`` as ``part-NNNNN.parquet`` shards plus ``manifest.json``, atomically.

    Args:
        table: the rows, in the order they should be stored (checked against ``schema``).
        out_dir: the shard folder; it is replaced as a whole only once every file is written.
        rows_per_shard: rows in every shard but the last.
        row_group_size: rows per Parquet row group (the unit a streaming reader loads).
        schema: the shard schema (default :data:`SHARD`).
        compression: Parquet codec.

    Returns:
        The manifest that was written: ``schema``, ``schema_version``, ``rows``,
        ``rows_per_shard``, ``row_group_size``, ``pair_counts`` and ``shards`` (one
        ``{"file", "rows", "sha256"}`` per shard). Equal inputs give byte-identical shards.
    """
    if isinstance(rows_per_shard, bool) or not isinstance(rows_per_shard, int) or rows_per_shard < 1:
        raise PipelineError(f"rows_per_shard is {rows_per_shard!r}, expected an integer >= 1")
    if isinstance(row_group_size, bool) or not isinstance(row_group_size, int) or row_group_size < 1:
        raise PipelineError(f"row_group_size is {row_group_size!r}, expected an integer >= 1")
    out_dir = Path(out_dir)
    table = with_schema_version(conform(table, schema, what=str(out_dir)), SCHEMA_VERSION)
    shards = []
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        # An empty table still gets one (empty) shard, so readers always find the schema.
        for number, start in enumerate(range(0, max(len(table), 1), rows_per_shard)):
            name = SHARD_PATTERN.format(number)
            part = table.slice(start, rows_per_shard)
            pq.write_table(part, tmp / name, compression=compression,
                           row_group_size=row_group_size, write_statistics=True)
            shards.append({"file": name, "rows": len(part), "sha256": sha256_file(tmp / name)})
        manifest = {
            "schema": _schema_description(schema),
            "schema_version": SCHEMA_VERSION,
            "rows": len(table),
            "rows_per_shard": rows_per_shard,
            "row_group_size": row_group_size,
            "pair_counts": pair_counts(table) if "source" in schema.names else {},
            "shards": shards,
        }
        write_json(manifest, tmp / MANIFEST)
    return manifest


def _schema_difference(found: pa.Schema, expected: pa.Schema) -> str:
    """What differs between two schemas, in words (missing/extra columns, types, order)."""
    problems = []
    missing = [f.name for f in expected if f.name not in found.names]
    extra = [f.name for f in found if f.name not in expected.names]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    for field in expected:
        if field.name in found.names:
            other = found.field(field.name)
            if not other.type.equals(field.type) or other.nullable != field.nullable:
                nullable = "" if other.nullable == field.nullable else \
                    " (nullable)" if other.nullable else " (not null)"
                problems.append(f"column '{field.name}' is {other.type}{nullable}, expected "
                                f"{field.type}{' (not null)' if not field.nullable else ''}")
    if not problems:
        problems.append(f"columns in the order {found.names}, expected {expected.names}")
    return "; ".join(problems)


def shard_files(shard_dir: str | os.PathLike) -> list[Path]:
    """The shard files a manifest lists, in order (checks only that the manifest is readable)."""
    shard_dir = Path(shard_dir)
    manifest = _read_manifest(shard_dir)
    return [shard_dir / entry["file"] for entry in manifest["shards"]]


def no_rows_error(shard_dir: str | os.PathLike) -> PipelineError:
    """The error for a shard folder that holds no rows."""
    return PipelineError(f"{Path(shard_dir) / MANIFEST}: the shard folder holds no rows, "
                         f"expected training pairs")


def shard_sources(shard_dir: str | os.PathLike) -> list[str]:
    """The training sources (``qa``, ``domain``, ...) a shard folder holds, from its manifest's
    ``pair_counts`` (keys ``source:query_lang-passage_lang``), sorted; none is an error."""
    manifest = _read_manifest(Path(shard_dir))
    if not manifest.get("rows"):
        raise no_rows_error(shard_dir)
    return sorted({key.split(":", 1)[0] for key in manifest.get("pair_counts") or {}})


def _read_manifest(shard_dir: Path) -> dict:
    path = shard_dir / MANIFEST
    if not path.is_file():
        raise PipelineError(f"{path}: shard manifest not found (is {shard_dir} a shard folder "
                            f"written by write_shards?)")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
        raise PipelineError(f"{path}: field 'shards' missing, expected a list of shard entries")
    return manifest


def read_shards(shard_dir: str | os.PathLike, *, schema: pa.Schema = SHARD,
                verify_checksums: bool = True) -> pa.Table:
    """Read a shard folder into one table, after checking it against its manifest.

    Raises :class:`PipelineError` naming the shard when a listed shard is missing, its
    SHA-256 or row count differs from the manifest, or its schema differs from ``schema``;
    and naming ``manifest.json`` when the manifest's schema differs from ``schema``.
    """
    shard_dir = Path(shard_dir)
    manifest = _read_manifest(shard_dir)
    expected_schema = _schema_description(schema)
    if manifest.get("schema") != expected_schema:
        raise PipelineError(f"{shard_dir / MANIFEST}: field 'schema' is {manifest.get('schema')}, "
                            f"expected {expected_schema}")
    tables = []
    for entry in manifest["shards"]:
        path = shard_dir / entry["file"]
        if not path.is_file():
            raise PipelineError(f"{path}: shard listed in {MANIFEST} is missing")
        if verify_checksums and sha256_file(path) != entry["sha256"]:
            raise PipelineError(f"{path}: sha256 is {sha256_file(path)}, expected "
                                f"{entry['sha256']} from {MANIFEST} (corrupt or modified shard)")
        part = read_parquet(path)
        if not part.schema.remove_metadata().equals(schema.remove_metadata()):
            raise PipelineError(f"{path}: schema differs from the expected shard schema: "
                                f"{_schema_difference(part.schema, schema)}")
        if len(part) != entry["rows"]:
            raise PipelineError(f"{path}: has {len(part)} rows, expected {entry['rows']} "
                                f"from {MANIFEST}")
        tables.append(part)
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables).replace_schema_metadata(None)
