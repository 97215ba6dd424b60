"""NTREX-128: the reader on the mirror and on broken copies, the config, the language pairs and
the build_parallel_shards stage (manifest, leakage guard)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hybrid_retrieval import ntrex, sources
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.schemas import SHARD
from hybrid_retrieval.shards import MANIFEST, pair_kind, read_shards

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(not (MIRROR / ntrex.DOCUMENT_IDS).is_file(),
                                  reason="NTREX-128 not in the data mirror")
LINES = 1997


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> pa.Table:
    """German, English and Greek from the mirror (read once for the module)."""
    if not (MIRROR / ntrex.DOCUMENT_IDS).is_file():
        pytest.skip("NTREX-128 not in the data mirror")
    return ntrex.read_ntrex(["de", "en", "el"], MIRROR, tmp_path_factory.mktemp("dl"))


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------

def test_code_map() -> None:
    assert set(ntrex.LANGUAGE_FILES) == set("ar de el en es fr hi id it ja ko nl pt ru th tr vi "
                                            "zh".split())
    assert ntrex.LANGUAGE_FILES["pt"] == "por" and ntrex.LANGUAGE_FILES["zh"] == "zho-CN"
    assert ntrex.REFERENCE_VARIETIES == {"por-BR": "pt"}
    assert ntrex.ntrex_file("eng") == "ntrex-128/newstest2019-src.eng.txt"
    files = set(sources.list_files("ntrex-128/", ".txt"))
    for code in [*ntrex.LANGUAGE_FILES.values(), *ntrex.REFERENCE_VARIETIES]:
        assert ntrex.ntrex_file(code) in files, code  # every file has a pinned checksum
    assert ntrex.sentence_id(7) == "ntrex:0007"
    assert ntrex.KIND == pair_kind("de", "en")


@needs_mirror
def test_read_ntrex_on_the_mirror(three: pa.Table) -> None:
    assert three.schema.equals(ntrex.TABLE_SCHEMA)
    assert len(three) == 3 * LINES
    assert three.column("lang").to_pylist() == ["de"] * LINES + ["en"] * LINES + ["el"] * LINES
    english = three.slice(LINES, LINES)
    docs = (MIRROR / ntrex.DOCUMENT_IDS).read_text(encoding="utf-8").split("\n")[:LINES]
    assert english.column("doc_id").to_pylist() == [d.strip() for d in docs]
    assert len(set(docs)) == 123
    assert english.column("sentence_id")[0].as_py() == "ntrex:0000"
    assert english.column("sentence_id")[LINES - 1].as_py() == "ntrex:1996"
    assert english.column("text")[0].as_py() == "Welsh AMs worried about 'looking like muppets'"
    # One id for one sentence in every language; no CR or padding left in the texts.
    rows = {(r["lang"], r["sentence_id"]): r for r in three.to_pylist()}
    de, en, el = (rows[(lang, "ntrex:0002")] for lang in ("de", "en", "el"))
    assert de["doc_id"] == en["doc_id"] == el["doc_id"] == "bbc.381790"
    assert en["text"].startswith("It has arisen because of plans to change the name")
    assert "Parlament" in de["text"] and de["text"] != en["text"]
    assert all(t and t == t.strip() and "\r" not in t for t in three.column("text").to_pylist())
    assert len(ntrex.read_lines("por-BR", MIRROR, "unused")) == LINES


def _fake_mirror(tmp_path: Path, monkeypatch, edit: dict[str, callable]) -> Path:
    """A mirror with copies of DOCUMENT_IDS.tsv, the English source and the German reference,
    ``edit[relpath](lines) -> lines`` applied, and the checksum registry patched to accept
    them (so the reader's own checks are what fails)."""
    mirror = tmp_path / "mirror"
    sums = dict(sources.checksums())
    for relpath in (ntrex.DOCUMENT_IDS, ntrex.ntrex_file("eng"), ntrex.ntrex_file("deu")):
        target = mirror / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (MIRROR / relpath).read_bytes()
        if relpath in edit:
            lines = data.decode("utf-8").split("\n")
            data = "\n".join(edit[relpath](lines)).encode("utf-8")
        target.write_bytes(data)
        sums[relpath] = sources.sha256_file(target)
    monkeypatch.setattr(sources, "checksums", lambda: sums)
    return mirror


@needs_mirror
def test_missing_line_names_file_and_counts(tmp_path, monkeypatch) -> None:
    german = ntrex.ntrex_file("deu")
    mirror = _fake_mirror(tmp_path, monkeypatch, {german: lambda ls: ls[:100] + ls[101:]})
    with pytest.raises(PipelineError) as err:
        ntrex.read_ntrex(["en", "de"], mirror, tmp_path / "dl")
    message = str(err.value)
    assert str(mirror / german) in message
    assert f"{LINES - 1} lines, expected {LINES}" in message and "DOCUMENT_IDS.tsv" in message
    assert not (tmp_path / "dl").exists()  # nothing was downloaded


@needs_mirror
def test_empty_line_names_file_and_line(tmp_path, monkeypatch) -> None:
    german = ntrex.ntrex_file("deu")

    def blank(lines: list[str]) -> list[str]:
        return lines[:4] + [" \t\r"] + lines[5:]  # whitespace only: empty once normalised
    mirror = _fake_mirror(tmp_path, monkeypatch, {german: blank})
    with pytest.raises(PipelineError, match=r"line 5 \(ntrex:0004\) is empty") as err:
        ntrex.read_ntrex(["de"], mirror, tmp_path / "dl")
    assert str(mirror / german) in str(err.value)


@needs_mirror
def test_extra_line_in_document_ids_is_a_count_mismatch(tmp_path, monkeypatch) -> None:
    mirror = _fake_mirror(tmp_path, monkeypatch,
                          {ntrex.DOCUMENT_IDS: lambda ls: ls[:-1] + ["extra.1", ""]})
    with pytest.raises(PipelineError, match=f"{LINES} lines, expected {LINES + 1}"):
        ntrex.read_ntrex(["en"], mirror, tmp_path / "dl")


def test_unknown_language_names_the_param_and_choices(tmp_path) -> None:
    for bad in (["de", "xx"], ["pt", "por-BR"]):  # por-BR: an MT reference, not a language
        with pytest.raises(PipelineError) as err:
            ntrex.read_ntrex(bad, tmp_path, tmp_path / "dl")
        message = str(err.value)
        assert "'parallel.languages'" in message and repr(bad[-1]) in message
        assert "'zh'" in message and "'pt'" in message  # the choices
    with pytest.raises(PipelineError, match="empty"):
        ntrex.read_ntrex([], tmp_path, tmp_path / "dl")
    with pytest.raises(PipelineError, match="repeated"):
        ntrex.read_ntrex(["de", "de"], tmp_path, tmp_path / "dl")
    assert not (tmp_path / "dl").exists()


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------

def test_parallel_config() -> None:
    default = ntrex.read_parallel_config({"parallel": {}}, "p.yaml")
    assert default.languages == ntrex.XQUAD_R_LANGUAGES and default.holdout_languages == ()
    assert (default.max_sentences, default.seed) == (0, 13)
    paper = ntrex.read_parallel_config({"parallel": {"holdout_languages": ["el", "vi"]}})
    assert paper.holdout_languages == ntrex.PAPER_HOLDOUT_LANGUAGES
    assert paper.training_languages == ("ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh")
    cases = {
        "'parallel.languages' is ['de', 'xx'] (unknown ['xx'])": {"languages": ["de", "xx"]},
        "'parallel.holdout_languages' is ['fr'] (['fr'] not in 'parallel.languages')":
            {"languages": ["de", "en"], "holdout_languages": ["fr"]},
        "'parallel.holdout_languages' is ['xx'] (unknown ['xx'])": {"holdout_languages": ["xx"]},
        "expected at least two languages": {"languages": ["de", "en"],
                                            "holdout_languages": ["de"]},
        "'parallel.max_sentences' is -1, expected a value >= 0": {"max_sentences": -1},
        "unknown keys ['parallel.holdout']": {"holdout": ["el"]},
    }
    for message, section in cases.items():
        with pytest.raises(PipelineError) as err:
            ntrex.read_parallel_config({"parallel": section}, "p.yaml")
        assert str(err.value).startswith("p.yaml: ") and message in str(err.value), section


# ---------------------------------------------------------------------------------------------
# Pairs and document subsets
# ---------------------------------------------------------------------------------------------

@needs_mirror
def test_parallel_pairs(three: pa.Table) -> None:
    pairs = ntrex.parallel_pairs(three, ["de", "en", "el"])
    assert pairs.schema.equals(SHARD)
    assert len(pairs) == 6 * LINES  # 3 x 2 ordered pairs x every sentence
    rows = pairs.to_pylist()
    assert all(r["query_lang"] != r["passage_lang"] for r in rows)
    assert {r["source"] for r in rows} == {"parallel"} and {r["kind"] for r in rows} == {"cross"}
    keys = [(r["query_lang"], r["passage_lang"], r["pair_id"]) for r in rows]
    assert keys == sorted(keys)
    text = {(r["lang"], r["sentence_id"]): r["text"] for r in three.to_pylist()}
    for r in rows[::997]:
        assert r["query"] == text[(r["query_lang"], r["pair_id"])]
        assert r["passage"] == text[(r["passage_lang"], r["pair_id"])]
    # One sentence: the same pair_id in every language pair.
    same = [r for r in rows if r["pair_id"] == "ntrex:0010"]
    assert sorted((r["query_lang"], r["passage_lang"]) for r in same) == [
        ("de", "el"), ("de", "en"), ("el", "de"), ("el", "en"), ("en", "de"), ("en", "el")]
    assert ntrex.parallel_pairs(three, ["de", "en", "el"]).equals(pairs)  # deterministic

    held = ntrex.parallel_pairs(three, ["de", "en", "el"], holdout_languages=["el"])
    assert len(held) == 2 * LINES
    assert set(held.column("query_lang").to_pylist()) == {"de", "en"}
    assert set(held.column("passage_lang").to_pylist()) == {"de", "en"}
    with pytest.raises(PipelineError, match="no sentences in 'pt'"):
        ntrex.parallel_pairs(three, ["de", "pt"])
    with pytest.raises(PipelineError, match="at least two languages"):
        ntrex.parallel_pairs(three, ["de", "el"], holdout_languages=["el"])


def test_parallel_pairs_only_shared_sentences() -> None:
    table = pa.Table.from_pylist([
        {"sentence_id": "ntrex:0000", "doc_id": "d", "lang": "de", "text": "Hallo"},
        {"sentence_id": "ntrex:0001", "doc_id": "d", "lang": "de", "text": "Welt"},
        {"sentence_id": "ntrex:0001", "doc_id": "d", "lang": "en", "text": "World"},
    ], schema=ntrex.TABLE_SCHEMA)
    rows = ntrex.parallel_pairs(table, ["en", "de"]).to_pylist()
    assert [(r["query_lang"], r["pair_id"], r["query"], r["passage"]) for r in rows] == [
        ("de", "ntrex:0001", "Welt", "World"), ("en", "ntrex:0001", "World", "Welt")]


@needs_mirror
def test_select_documents(three: pa.Table) -> None:
    assert ntrex.select_documents(three, 0, 13) is three
    assert ntrex.select_documents(three, LINES, 13) is three
    subset = ntrex.select_documents(three, 60, 13)
    assert subset.equals(ntrex.select_documents(three, 60, 13))
    assert not subset.equals(ntrex.select_documents(three, 60, 14))
    english = subset.filter(pa.compute.equal(subset.column("lang"), "en"))
    docs = set(english.column("doc_id").to_pylist())
    full_counts = {}
    for doc in three.slice(0, LINES).column("doc_id").to_pylist():
        full_counts[doc] = full_counts.get(doc, 0) + 1
    assert len(english) == sum(full_counts[d] for d in docs)  # whole documents only
    assert 60 <= len(english) < 60 + max(full_counts.values())
    assert len(subset) == 3 * len(english)  # the same sentences in every language
    ids = english.column("sentence_id").to_pylist()
    assert ids == sorted(ids)  # rows keep their order


# ---------------------------------------------------------------------------------------------
# Stage
# ---------------------------------------------------------------------------------------------

def _run_stage(params: Path, out: Path, *forbidden: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "stages" / "build_parallel_shards.py"),
               "--params", str(params), "--out", str(out)]
    for path in forbidden:
        command += ["--forbidden", str(path)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "HR_LOGLEVEL": "WARNING"})


@needs_mirror
def test_build_parallel_shards_stage(tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({
        "data": {"mirror": str(MIRROR), "download_dir": str(tmp_path / "dl")},
        "shards": {"rows_per_shard": 100, "row_group_size": 32, "include_title": False},
        "parallel": {"languages": ["pt", "de", "en"], "holdout_languages": [],
                     "max_sentences": 30, "seed": 13}}))
    out = tmp_path / "shards" / "ntrex"
    done = _run_stage(params, out)
    assert done.returncode == 0, done.stderr

    expected = ntrex.select_documents(ntrex.read_ntrex(["de"], MIRROR, tmp_path / "dl"), 30, 13)
    n = len(expected)
    assert 30 <= n < 100
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["pair_counts"] == {f"parallel:{q}-{p}": n for q, p in [
        ("de", "en"), ("de", "pt"), ("en", "de"), ("en", "pt"), ("pt", "de"), ("pt", "en")]}
    assert manifest["rows"] == 6 * n and len(manifest["shards"]) == -(-6 * n // 100)
    assert done.stdout.strip() == (
        f"build_parallel_shards: {6 * n} rows (6 language pairs x {n} sentences; holdout "
        f"languages: none) in {len(manifest['shards'])} shards -> {out}")
    table = read_shards(out)
    assert set(table.column("pair_id").to_pylist()) == set(expected.column("sentence_id")
                                                           .to_pylist())

    # An evaluation text among the sentences (case changed): exit 2, one line, no output.
    leaked = table.column("passage")[3].as_py()
    forbidden = tmp_path / "questions.parquet"
    pq.write_table(pa.table({"qid": ["q1", "q2"], "text": ["unrelated question?",
                                                          leaked.upper()]}), forbidden)
    out2 = tmp_path / "shards" / "leaky"
    failed = _run_stage(params, out2, forbidden)
    assert failed.returncode == 2, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: NTREX-128 sentences for") and "evaluation texts" in last
    assert "Traceback" not in failed.stderr
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["ntrex"]

    missing = _run_stage(params, out2, tmp_path / "nope.parquet")
    assert missing.returncode == 2 and "forbidden-texts file not found" in missing.stderr
    shutil.rmtree(out)
