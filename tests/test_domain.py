"""Debian Reference domain pairs: cleaning, blocks, ICT/heading pairs, alignment, de-duplication,
the Debian FAQ-R leakage guard, the cross-lingual switch, params checks and the two stages."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from hybrid_retrieval import domain
from hybrid_retrieval.debian_reference import (Paragraph, aligned_paragraphs, chapter_files,
                                               chapter_headings, chapter_paragraphs)
from hybrid_retrieval.domain import Block, DomainConfig, LanguageView, PairLimits
from hybrid_retrieval.leakage import FaqLeakageGuard
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import read_json, read_parquet, write_parquet
from hybrid_retrieval.schemas import DOMAIN_PAIRS, EVAL_CANDIDATES, EVAL_QUESTIONS
from hybrid_retrieval.shards import read_shards
from hybrid_retrieval.sources import locate

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
DOWNLOADS = ROOT / "data" / "downloads"
needs_mirror = pytest.mark.skipif(not (MIRROR / "debian" / "reference" / "en").is_dir(),
                                  reason="data mirror not available")

LIMITS = PairLimits(ict_query_words=(3, 40), heading_query_words=(1, 20),
                    passage_words=(3, 150), ict_keep_query_prob=0.0, seed=13)
EN_PT = DomainConfig(languages=("en", "pt"), books=("reference",))


def _view(lang: str, texts: dict[int, str], blocks: list[Block],
          titles: dict[str, str] | None = None, aligned: bool = True) -> LanguageView:
    view = LanguageView(lang, "ch99", aligned, blocks, dict(texts), dict(titles or {}))
    view.kept_blocks = {b.number for b in blocks}
    return view


def _chapter_html(lang: str, doc: str = "ch02") -> bytes:
    return locate(chapter_files(lang)[doc], MIRROR, DOWNLOADS).read_bytes()


# ---------------------------------------------------------------------------------------------
# HTML cleaning and headings on a real chapter
# ---------------------------------------------------------------------------------------------

@needs_mirror
def test_real_chapter_paragraphs_are_clean_text() -> None:
    paragraphs = chapter_paragraphs(_chapter_html("en"))
    assert len(paragraphs) == 552
    assert Counter(p.kind for p in paragraphs) == {"list": 253, "body": 214, "admonition": 66,
                                                   "caption": 19}
    assert paragraphs[2].text == ("The Debian archive is offered by many remote mirror sites for "
                                  "access through HTTP and FTP methods. It is also available as "
                                  "CD-ROM/DVD.")
    assert paragraphs[2].section == "_debian_package_management"
    texts = [p.text for p in paragraphs]
    assert not any("<code" in t or "class=" in t or "\n" in t for t in texts)
    # <pre class="screen"> listings are not paragraphs: their commands appear in no text.
    assert not any("$ pager README.Debian" in t for t in texts)
    assert paragraphs[next(i for i, p in enumerate(paragraphs) if p.kind == "caption")].text \
        .startswith("Table 2.1.")


@needs_mirror
def test_real_chapter_headings_without_numbers() -> None:
    english = chapter_headings(_chapter_html("en"))
    portuguese = chapter_headings(_chapter_html("pt"))
    assert len(english) == len(portuguese) == 67
    assert english[1] == domain.Heading("_package_configuration", 2, "2.1.1",
                                        "Package configuration")
    assert portuguese[1].title == "Configuração de pacotes"
    assert [h.section for h in english] == [h.section for h in portuguese]


# ---------------------------------------------------------------------------------------------
# Blocks, ICT and heading pairs on hand-built input
# ---------------------------------------------------------------------------------------------

def test_blocks_pack_paragraphs_within_sections() -> None:
    words = lambda n: " ".join(["word"] * n)  # noqa: E731
    paragraphs = [Paragraph(0, "a", words(30)), Paragraph(1, "a", words(30)),
                  Paragraph(2, "a", "Table 1.1. Caption", "caption"), Paragraph(3, "a", words(10)),
                  Paragraph(4, "b", words(80), "list"), Paragraph(5, "b", ""),
                  Paragraph(6, "b", words(5), "admonition"),
                  Paragraph(7, "b", "[1] note", "footnote")]
    blocks = domain.make_blocks("ch99", paragraphs, max_words=60)
    assert [(b.section, b.indices, b.first_of_section) for b in blocks] == [
        ("a", (0, 1), True), ("a", (3,), False), ("b", (4,), True), ("b", (6,), False)]
    assert [b.number for b in blocks] == [0, 1, 2, 3]


PARAGRAPH = ("APT resolves package dependencies automatically. It downloads packages from the "
             "configured mirrors. The cache lives in /var/cache/apt/archives.")
SENTENCES = ["APT resolves package dependencies automatically.",
             "It downloads packages from the configured mirrors.",
             "The cache lives in /var/cache/apt/archives."]


def test_ict_pair_is_a_sentence_and_the_rest_deterministic_with_seed() -> None:
    block = Block("ch99", 0, "_apt", (0,), False)
    view = _view("en", {0: PARAGRAPH}, [block])
    pair, reason = domain.ict_pair(block, view, view, LIMITS)
    assert reason == "ok" and pair.method == "ict" and pair.query in SENTENCES
    assert pair.passage == " ".join(s for s in SENTENCES if s != pair.query)
    assert not pair.query_kept
    assert pair.id.startswith("debref:ch99:b000:ict:p000.s")
    again, _ = domain.ict_pair(block, _view("en", {0: PARAGRAPH}, [block]), view, LIMITS)
    assert again == pair
    chosen = {domain.ict_pair(block, view, view, dataclasses.replace(LIMITS, seed=seed))[0].query
              for seed in range(12)}
    assert len(chosen) > 1  # the seed, not the position, picks the sentence

    always_keep = dataclasses.replace(LIMITS, ict_keep_query_prob=1.0)
    kept, _ = domain.ict_pair(block, view, view, always_keep)
    assert kept.query_kept and kept.passage == PARAGRAPH


def test_ict_needs_a_rest_and_skips_colon_and_short_sentences() -> None:
    block = Block("ch99", 0, "_apt", (0,), False)
    single = _view("en", {0: SENTENCES[0]}, [block])
    assert domain.ict_pair(block, single, single, LIMITS) == (None, "passage_too_short")
    always_keep = dataclasses.replace(LIMITS, ict_keep_query_prob=1.0)
    assert domain.ict_pair(block, single, single, always_keep)[0] is None  # never itself

    two = Block("ch99", 0, "_apt", (0, 1), False)
    colon = _view("en", {0: "Run the following commands as root to update it:",
                         1: SENTENCES[1] + " Ok go."}, [two])
    for seed in range(8):
        pair, _ = domain.ict_pair(two, colon, colon, dataclasses.replace(LIMITS, seed=seed))
        assert pair is not None and pair.query == SENTENCES[1]  # the 2-word "Ok go." is too short


def test_heading_pair_and_fallback_to_ict() -> None:
    first = Block("ch99", 0, "_apt", (0,), True)
    view = _view("en", {0: PARAGRAPH}, [first], titles={"_apt": "Advanced Packaging Tool"})
    pair, reason = domain.heading_pair(first, view, view, LIMITS)
    assert reason == "ok" and (pair.query, pair.passage) == ("Advanced Packaging Tool", PARAGRAPH)
    assert pair.id == "debref:ch99:b000:heading" and pair.section == "_apt"

    counts: Counter = Counter()
    untitled = _view("en", {0: PARAGRAPH}, [first])
    fallback = domain.block_pair(first, untitled, untitled, LIMITS, counts)
    assert fallback.method == "ict" and counts == {"heading_dropped_no_heading": 1}
    later = Block("ch99", 1, "_apt", (0,), False)
    assert domain.heading_pair(later, view, view, LIMITS) == (None, "not_first_block")


def test_cross_lingual_ict_removes_the_translation_of_the_query() -> None:
    block = Block("ch99", 0, "_apt", (0, 1), False)
    english = _view("en", {0: "First sentence here. Second sentence here.",
                           1: "Another paragraph with words."}, [block])
    german = _view("de", {0: "Erster Satz hier. Zweiter Satz hier.",
                          1: "Ein weiterer Absatz mit Wörtern."}, [block])
    assert domain.ict_passage(block, english, german, (0, 1), keep_query=False) == \
        "Erster Satz hier. Ein weiterer Absatz mit Wörtern."
    # The paragraph splits differently in the passage language: the whole paragraph goes.
    german.texts[0] = "Erster Satz hier, zweiter Satz hier."
    german._spans.clear()
    assert domain.ict_passage(block, english, german, (0, 1), keep_query=False) == \
        "Ein weiterer Absatz mit Wörtern."
    assert domain.ict_passage(block, english, german, (0, 1), keep_query=True) == \
        "Erster Satz hier, zweiter Satz hier. Ein weiterer Absatz mit Wörtern."


# ---------------------------------------------------------------------------------------------
# Alignment on real chapters
# ---------------------------------------------------------------------------------------------

@needs_mirror
def test_real_alignment_en_pt_keeps_translations_and_drops_untranslated() -> None:
    english = domain.read_chapters("en", MIRROR, DOWNLOADS)
    portuguese = domain.read_chapters("pt", MIRROR, DOWNLOADS)
    assert domain.chapter_alignment(english["ch02"], portuguese["ch02"]) is None
    assert domain.chapter_alignment(english["apa"], portuguese["apa"]) == \
        "34 paragraphs vs 33 in English"
    blocks = domain.make_blocks("ch02", english["ch02"].paragraphs, 60)
    counts: Counter = Counter()
    en_view = domain.language_view(english["ch02"], english["ch02"], True, blocks, 60, Counter())
    pt_view = domain.language_view(portuguese["ch02"], english["ch02"], True, blocks, 60, counts)
    assert en_view.texts[2].startswith("The Debian archive is offered by many remote mirror")
    assert pt_view.texts[2].startswith("O arquivo Debian é oferecido por muitos sites mirror")
    untranslated = ("The current Debian package management system which can utilize all these "
                    "resources is Advanced Packaging Tool (APT).")
    assert portuguese["ch02"].paragraphs[3].text == untranslated  # left in English by po4a
    assert 3 in en_view.texts and 3 not in pt_view.texts
    assert counts["untranslated"] > 0 and counts["caption"] == 19
    # Consistent with debian_reference.aligned_paragraphs (position pairs, English != target).
    reference_pairs = {(p.index, p.source, p.target) for p in
                       aligned_paragraphs(MIRROR, DOWNLOADS, "en", "pt") if p.doc == "ch02"}
    ours = {(i, en_view.texts[i], pt_view.texts[i]) for i in pt_view.texts if i in en_view.texts}
    assert ours and ours <= reference_pairs


# ---------------------------------------------------------------------------------------------
# Near-duplicates
# ---------------------------------------------------------------------------------------------

def test_duplicate_flags_exact_near_and_distinct() -> None:
    base = ("Use aptitude to browse the package list, mark packages for installation and "
            "resolve the dependencies interactively before anything is changed on the system.")
    texts = [base,
             "  " + base.upper().replace(" ", "   "),                  # same after normalising
             base.replace("interactively", "interactivly"),            # one typo: near
             "Systemd starts the services of the system in parallel at boot time.",
             "",
             base.replace("Use aptitude", "Use synaptic")]
    flags = domain.duplicate_flags(texts, 0.8)
    assert flags == [None, "duplicate", "near_duplicate", None, None, "near_duplicate"]
    assert domain.duplicate_flags(texts, 0.99) == [None, "duplicate", None, None, None, None]
    assert domain.duplicate_flags(list(reversed(texts)), 0.8)[-1] == "near_duplicate"


# ---------------------------------------------------------------------------------------------
# Debian FAQ-R leakage guard
# ---------------------------------------------------------------------------------------------

FAQ_QUESTION = "What is Debian GNU/Linux?"
FAQ_PASSAGE = ("Debian GNU/Linux is a particular distribution of the Linux operating system, "
               "and numerous packages that run on it.")
FAQ_CONTEXT = FAQ_PASSAGE + " The Debian project was founded in 1993 by Ian Murdock."


def test_leak_reasons_exact_contained_and_inside() -> None:
    guard = FaqLeakageGuard([FAQ_QUESTION], [FAQ_PASSAGE, "Yes."], [FAQ_CONTEXT], min_chars=30)
    texts = ["what is   Debian GNU/Linux?",                                   # exact, normalised
             "In short: " + FAQ_PASSAGE + " See the FAQ.",                     # contains a passage
             "The Debian project was founded in 1993 by Ian Murdock.",         # copied from it
             "Yes. Debian is a free operating system.",                        # short FAQ passage
             "Systemd starts the services in parallel."]
    assert guard.leak_reasons(texts) == ["exact", "contains_faq", "inside_faq", None, None]


def test_assert_clean_fires_on_a_planted_row() -> None:
    guard = FaqLeakageGuard([FAQ_QUESTION], [FAQ_PASSAGE], [FAQ_CONTEXT])
    row = {"id": "x", "query_lang": "en", "passage_lang": "en", "method": "ict",
           "doc": "ch01", "section": "s"}
    clean = pa.Table.from_pylist([{**row, "query": "How do I list packages?",
                                   "passage": "Use dpkg -l to list installed packages."}],
                                 schema=DOMAIN_PAIRS)
    guard.assert_clean(clean, what="pairs")
    planted = pa.Table.from_pylist([{**row, "query": "How do I list packages?",
                                     "passage": "Intro. " + FAQ_PASSAGE}], schema=DOMAIN_PAIRS)
    with pytest.raises(PipelineError,
                       match=r"pairs: 1 rows contain Debian domain test-set text .*passage:contains_faq"):
        guard.assert_clean(planted, what="pairs")


@pytest.fixture(scope="module")
def en_pt_pairs() -> tuple[pa.Table, dict]:
    if not (MIRROR / "debian" / "reference" / "en").is_dir():
        pytest.skip("data mirror not available")
    return domain.build_domain_pairs(EN_PT, MIRROR, DOWNLOADS)


@needs_mirror
def test_build_drops_and_counts_a_planted_leak(en_pt_pairs: tuple[pa.Table, dict]) -> None:
    table, _ = en_pt_pairs
    rows = table.to_pylist()
    mono_en = next(r for r in rows if (r["query_lang"], r["passage_lang"]) == ("en", "en"))
    mono_pt = next(r for r in rows if (r["query_lang"], r["passage_lang"], r["method"])
                   == ("pt", "pt", "heading"))
    guard = FaqLeakageGuard([mono_pt["query"]], [mono_en["passage"]])
    clean, stats = domain.build_domain_pairs(EN_PT, MIRROR, DOWNLOADS, guard)
    assert stats["leakage_dropped"] >= 2
    assert stats["groups"]["en-en"].get("dropped_leak_passage_exact", 0) >= 1
    assert stats["groups"]["pt-pt"].get("dropped_leak_query_exact", 0) >= 1
    assert mono_en["passage"] not in clean.column("passage").to_pylist()
    assert mono_pt["query"] not in clean.column("query").to_pylist()
    assert len(clean) < len(table)


# ---------------------------------------------------------------------------------------------
# The whole build, the cross-lingual switch and the params
# ---------------------------------------------------------------------------------------------

@needs_mirror
def test_build_groups_ids_and_filters(en_pt_pairs: tuple[pa.Table, dict]) -> None:
    table, stats = en_pt_pairs
    groups = Counter(zip(table.column("query_lang").to_pylist(),
                         table.column("passage_lang").to_pylist()))
    assert set(groups) == {("en", "en"), ("pt", "pt"), ("en", "pt"), ("pt", "en")}
    keys = list(zip(table.column("query_lang").to_pylist(),
                    table.column("passage_lang").to_pylist(), table.column("id").to_pylist()))
    assert len(set(keys)) == len(keys)  # ids unique within a language pair
    ids = {lang_pair: {i for q, p, i in keys if (q, p) == lang_pair} for lang_pair in groups}
    assert ids[("en", "en")] & ids[("en", "pt")]  # one source pair in several language pairs
    assert set(table.column("method").to_pylist()) == {"ict", "heading"}
    assert stats["alignment"]["reference"]["pt"]["chapters_aligned"] == 12
    assert stats["alignment"]["reference"]["pt"]["chapters_total"] == 13
    for row in table.to_pylist():
        words = domain.count_words(row["passage"])
        assert 10 <= words <= 150
        if row["method"] == "ict":
            assert 5 <= domain.count_words(row["query"]) <= 40
    assert stats["totals"]["rows"] == len(table)
    assert all(g["pairs"] <= cap for g, cap in zip(stats["groups"].values(),
                                                   stats["config"]["caps"].values()))


@needs_mirror
def test_cross_lingual_switch_off_gives_monolingual_pairs_only() -> None:
    config = dataclasses.replace(EN_PT, cross_lingual=False, max_mono_pairs_per_language=200)
    table, stats = domain.build_domain_pairs(config, MIRROR, DOWNLOADS)
    assert set(table.column("query_lang").to_pylist()) == {"en", "pt"}
    assert table.column("query_lang").to_pylist() == table.column("passage_lang").to_pylist()
    assert set(stats["groups"]) == {"en-en", "pt-pt"} and len(table) == 400


def test_language_pairs_per_scope_and_caps() -> None:
    three = DomainConfig(languages=("en", "de", "pt"), cross_lingual_scope="english")
    assert domain.language_pairs(three) == [("en", "en"), ("de", "de"), ("pt", "pt"),
                                            ("en", "de"), ("en", "pt"), ("de", "en"), ("pt", "en")]
    everything = dataclasses.replace(three, cross_lingual_scope="all")
    assert ("de", "pt") in domain.language_pairs(everything)
    assert len(domain.language_pairs(everything)) == 9
    assert domain.language_pairs(dataclasses.replace(three, cross_lingual=False)) == \
        [("en", "en"), ("de", "de"), ("pt", "pt")]
    caps = domain.cap_per_group(everything, domain.language_pairs(everything))
    assert caps[("en", "en")] == 3000 and caps[("en", "de")] == 1500


def _params(**overrides: object) -> dict:
    cfg = {"languages": ["en", "de"], "cross_lingual": True, "cross_lingual_scope": "all",
           "seed": 13, "block_max_words": 60, "ict_keep_query_prob": 0.1,
           "ict_query_words": [5, 40], "heading_query_words": [1, 20], "passage_words": [10, 150],
           "near_duplicate_jaccard": 0.8, "max_mono_pairs_per_language": 3000,
           "max_cross_pairs_per_language": 3000, "leakage_min_chars": 30,
           "books": ["reference", "handbook"], "min_paragraphs": 200}
    cfg.update(overrides)
    return {"domain": cfg}


def test_params_are_validated() -> None:
    config = domain.read_domain_config(_params(languages=["en", "zh-cn"]))
    assert config.languages == ("en", "zh") and config.ict_query_words == (5.0, 40.0)
    allowed = r"\['ar', 'ca', 'cs', 'da', 'de', 'el', 'en', 'es', 'fa', 'fr', .*'zh'\]"
    with pytest.raises(PipelineError, match=r"'domain\.languages' is \['en', 'hi'\] \(unknown "
                                            r"\['hi'\]\), expected distinct values from "
                                            + allowed):
        domain.read_domain_config(_params(languages=["en", "hi"]))  # no Debian prose in Hindi
    with pytest.raises(PipelineError, match=r"'domain\.books' is \['faq'\]"):
        domain.read_domain_config(_params(books=["faq"]))  # the FAQ is a test set, never trained
    with pytest.raises(PipelineError, match="domain.languages"):
        domain.read_domain_config(_params(languages=["en", "en"]))
    with pytest.raises(PipelineError, match=r"domain\.cross_lingual_scope.*\['english', 'all'\]"):
        domain.read_domain_config(_params(cross_lingual_scope="pivot"))
    with pytest.raises(PipelineError, match=r"lacks 'en'"):
        domain.read_domain_config(_params(languages=["de", "pt"], cross_lingual_scope="english"))
    with pytest.raises(PipelineError, match=r"domain\.passage_words"):
        domain.read_domain_config(_params(passage_words=[50, 10]))
    with pytest.raises(PipelineError, match=r"domain\.cross_lingual' is 'yes'"):
        domain.read_domain_config(_params(cross_lingual="yes"))
    with pytest.raises(PipelineError, match="section 'domain' missing"):
        domain.read_domain_config({})


def test_domain_shard_table_rejects_repeated_ids() -> None:
    row = {"id": "debref:ch01:b000:heading", "query_lang": "en", "passage_lang": "de",
           "query": "q", "passage": "p", "method": "heading", "doc": "ch01", "section": "s"}
    shard = domain.domain_shard_table(pa.Table.from_pylist(
        [row, {**row, "passage_lang": "en"}], schema=DOMAIN_PAIRS))
    assert shard.column("kind").to_pylist() == ["cross", "mono"]
    assert set(shard.column("source").to_pylist()) == {"domain"}
    with pytest.raises(PipelineError, match="column 'id' repeats"):
        domain.domain_shard_table(pa.Table.from_pylist([row, row], schema=DOMAIN_PAIRS))


# ---------------------------------------------------------------------------------------------
# The stages, end to end (en + pt, planted FAQ leak)
# ---------------------------------------------------------------------------------------------

def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@needs_mirror
def test_stages_write_pairs_stats_and_identical_shards(tmp_path: Path,
                                                       en_pt_pairs: tuple[pa.Table, dict]) -> None:
    planted = en_pt_pairs[0].column("passage")[0].as_py()
    faq_dir = tmp_path / "faq"
    write_parquet(pa.Table.from_pylist([{"qid": "en:q", "group_id": "q", "lang": "en",
                                         "text": FAQ_QUESTION, "gold_cids": ["en:q:0"]}],
                                       schema=EVAL_QUESTIONS), faq_dir / "questions.parquet",
                  schema=EVAL_QUESTIONS)
    write_parquet(pa.Table.from_pylist([{"cid": "en:q:0", "lang": "en", "text": planted,
                                         "context": planted}], schema=EVAL_CANDIDATES),
                  faq_dir / "candidates.parquet", schema=EVAL_CANDIDATES)
    params = {"data": {"mirror": str(MIRROR), "download_dir": str(DOWNLOADS)},
              "shards": {"rows_per_shard": 1000, "row_group_size": 256, "include_title": False},
              **_params(languages=["en", "pt"], max_cross_pairs_per_language=300,
                        books=["reference"])}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    pairs, stats = tmp_path / "domain" / "pairs.parquet", tmp_path / "domain" / "stats.json"
    shards = tmp_path / "shards" / "domain"

    prepare = ["stages/prepare_domain.py", "--params", str(params_file), "--eval-dir",
               str(faq_dir), "--out", str(pairs), "--stats", str(stats)]
    build = ["stages/build_domain_shards.py", "--params", str(params_file), "--pairs",
             str(pairs), "--eval-dir", str(faq_dir), "--out", str(shards)]
    done = _run(*prepare)
    assert done.returncode == 0, done.stderr
    assert "prepare_domain:" in done.stdout and "1 evaluation-set leaks dropped" in done.stdout
    table = read_parquet(pairs, schema=DOMAIN_PAIRS)
    assert planted not in table.column("passage").to_pylist()
    assert read_json(stats)["leakage_dropped"] == 1
    done = _run(*build)
    assert done.returncode == 0, done.stderr
    first = {p.name: p.read_bytes() for p in sorted(shards.iterdir())}
    shard_table = read_shards(shards)
    assert len(shard_table) == len(table)
    assert set(shard_table.column("kind").to_pylist()) == {"mono", "cross"}
    assert len(first) == 1 + -(-len(table) // 1000)  # shards + manifest
    assert _run(*prepare).returncode == 0 and _run(*build).returncode == 0
    assert {p.name: p.read_bytes() for p in sorted(shards.iterdir())} == first

    params["domain"]["languages"] = ["en", "xx"]
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    done = _run(*prepare)
    assert done.returncode == 2 and "'domain.languages'" in done.stderr


@needs_mirror
def test_an_install_r_passage_planted_in_a_handbook_paragraph_is_caught(tmp_path: Path) -> None:
    """Leakage across sources: Install-R (a test set) text inside a Handbook (training) paragraph
    is dropped by prepare_domain's guard, and train stops on a shard row that still holds it."""
    from hybrid_retrieval.leakage import FaqLeakageGuard

    config = DomainConfig(languages=("en", "vi"), books=("handbook",), cross_lingual=False,
                          max_mono_pairs_per_language=100_000)
    clean, _ = domain.build_domain_pairs(config, MIRROR, DOWNLOADS)
    vi_passages = [p for p, q in zip(clean.column("passage").to_pylist(),
                                     clean.column("query_lang").to_pylist()) if q == "vi"]
    install_passage = max(vi_passages, key=len)[:80]  # a piece of a Handbook paragraph
    install_dir = tmp_path / "debian-install-r"
    write_parquet(pa.Table.from_pylist([{"qid": "vi:x", "group_id": "x", "lang": "vi",
                                         "text": "Một câu hỏi?", "gold_cids": ["vi:x:0"]}],
                                       schema=EVAL_QUESTIONS), install_dir / "questions.parquet",
                  schema=EVAL_QUESTIONS)
    write_parquet(pa.Table.from_pylist([{"cid": "vi:x:0", "lang": "vi", "text": install_passage,
                                         "context": install_passage}], schema=EVAL_CANDIDATES),
                  install_dir / "candidates.parquet", schema=EVAL_CANDIDATES)
    guard = FaqLeakageGuard.from_dirs([install_dir])
    table, stats = domain.build_domain_pairs(config, MIRROR, DOWNLOADS, guard)
    assert stats["groups"]["vi-vi"].get("dropped_leak_passage_contains_faq", 0) >= 1
    assert not any(install_passage in p for p in table.column("passage").to_pylist())
    with pytest.raises(PipelineError, match="unguarded handbook pairs: [0-9]+ rows contain Debian domain test-set text"):
        guard.assert_clean(clean, what="unguarded handbook pairs")
