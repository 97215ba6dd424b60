"""Debian FAQ-R: HTML sections, passages under the word limit, alignment, untranslated drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybrid_retrieval import debian_faq as faq
from hybrid_retrieval import sources
from hybrid_retrieval.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
DOWNLOADS = ROOT / "data" / "downloads"
needs_mirror = pytest.mark.skipif(not (MIRROR / "debian" / "faq" / "en").is_dir(),
                                  reason="data mirror not available")


def _page(sections: str, h1: str = "chap") -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<html xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="Content-Type" '
            'content="text/html; charset=UTF-8" /></head><body><div class="chapter">'
            f'<div class="titlepage"><h1 class="title"><a id="{h1}"></a>Chapter 1</h1></div>'
            f'{sections}</div></body></html>')


def _section(anchor: str, title: str, body: str) -> str:
    return (f'<div class="section"><div class="titlepage"><div><div><h2 class="title">'
            f'<a id="{anchor}"></a>{title}</h2></div></div></div>{body}</div>')


def test_markup_is_cleaned_and_subsections_left_out() -> None:
    body = ('<p>\nUse <code class="literal">apt</code> to install\n <em>packages</em>.'
            '<a href="#f"><sup class="footnote">[1]</sup></a> Really.</p>'
            '<div class="itemizedlist"><ul><li><p>first item</p></li><li>second item</li></ul>'
            '</div>'
            '<div class="variablelist"><dl><dt><span>term</span></dt><dd><p>definition</p></dd>'
            '</dl></div><pre class="screen">apt install  foo\n</pre>'
            '<div class="section"><div class="titlepage"><h3 class="title"><a id="sub"></a>'
            '1.1.1. Sub?</h3></div><p>Sub answer.</p></div>')
    sections = faq.faq_sections(_page(_section("q1", "1.1. How do I\n install?", body)), "zh-cn")
    assert len(sections) == 1
    section = sections[0]
    assert (section.lang, section.anchor, section.chapter, section.number, section.title) == (
        "zh", "q1", "chap", "1.1", "How do I install?")
    assert section.answer_text == ("Use apt to install packages. Really. first item second item "
                                   "term definition apt install foo")
    assert [b.is_code for b in section.blocks] == [False] * 5 + [True]
    assert "Sub answer" not in section.answer_text


def test_section_without_anchor_is_an_error() -> None:
    page = _page('<div class="section"><div class="titlepage"><h2>1.1. No anchor</h2></div>'
                 '<p>text</p></div>')
    with pytest.raises(PipelineError, match=r"chap.html: field '<h2> anchor' is missing"):
        faq.faq_sections(page, "en", source="chap.html")


def test_count_words_latin_and_cjk() -> None:
    assert faq.count_words("Install the  package, then reboot .") == 5  # "." alone is no word
    assert faq.count_words("安装软件包") == 2.5                            # 5 Han characters / 2
    assert faq.count_words("Debian とは何?") == 1 + 1.5                   # とは何 = 3 CJK chars
    assert faq.count_words("데비안 패키지는 무엇인가요?") == 3               # Hangul has spaces


@pytest.mark.parametrize("max_words", [5, 12, 100])
def test_passages_respect_the_word_limit(max_words: int) -> None:
    blocks = ["One two three. Four five six seven.",
              "A very long sentence with many many words that goes on and on past limits.",
              "这是一个很长的句子没有空格但是有很多汉字需要被切开。短句。"]
    passages = faq.split_passages(blocks, max_words)
    assert all(faq.count_words(p) <= max_words for p in passages)
    # Nothing is lost or reordered: the passages are the blocks' words, in order.
    assert "".join("".join(passages).split()) == "".join("".join(blocks).split())
    if max_words == 100:
        assert passages == [" ".join(blocks)]


def test_passages_split_at_sentence_boundaries() -> None:
    blocks = ["One two three. Four five six.", "Seven eight nine."]
    assert faq.split_passages(blocks, 6) == ["One two three. Four five six.",
                                             "Seven eight nine."]
    with pytest.raises(ValueError):
        faq.split_passages(blocks, 0)


def _sections(lang: str, title: str, answer: str, anchor: str = "q1") -> list[faq.FaqSection]:
    return faq.faq_sections(_page(_section(anchor, f"1.1. {title}", f"<p>{answer}</p>")), lang)


def test_untranslated_titles_and_answers_are_dropped() -> None:
    english_answer = ("Debian is a free operating system. It is developed by volunteers. "
                      "Use apt to install software.")
    by_lang = {
        "en": _sections("en", "What is Debian?", english_answer),
        # The title left in English (case and spacing differ): dropped.
        "de": _sections("de", "what is  Debian?", "Debian ist ein freies Betriebssystem."),
        # Translated title, but the answer is the English text: dropped.
        "fr": _sections("fr", "Qu'est-ce que Debian ?", english_answer),
        # Translated, one English sentence of three kept: stays.
        "pt": _sections("pt", "O que é Debian?", "Debian é um sistema operativo livre. "
                        "É desenvolvido por voluntários. Use apt to install software."),
        # A Russian title in Latin letters only is untranslated even if it differs.
        "ru": _sections("ru", "What's Debian?", "Debian — свободная операционная система."),
        "ja": _sections("ja", "Debian とは何?", "Debian は自由なオペレーティングシステムです。"),
        # An anchor English does not have cannot be aligned.
        "it": _sections("it", "Che cos'è Debian?", "Debian è libero.", anchor="other"),
    }
    kept, counts = faq.aligned_sections(by_lang, max_copied_share=0.5)
    assert {lang: len(sections) for lang, sections in kept.items()} == {
        "en": 1, "de": 0, "fr": 0, "pt": 1, "ru": 0, "ja": 1, "it": 0}
    assert counts["de"]["dropped_untranslated_title"] == 1
    assert counts["fr"]["dropped_untranslated_answer"] == 1
    assert counts["ru"]["dropped_untranslated_title"] == 1
    assert counts["it"]["dropped_unaligned"] == 1
    share = faq.copied_share(by_lang["pt"][0], by_lang["en"][0])
    assert 0.2 < share < 0.5
    with pytest.raises(PipelineError, match="lacks 'en'"):
        faq.aligned_sections({"pt": by_lang["pt"]})


def test_rows_ids_and_golds() -> None:
    sections = _sections("pt", "O que é Debian?", "Um. " * 30)
    questions, candidates = faq.faq_rows("pt", [s for s in sections])
    assert questions == [{"qid": "pt:q1", "group_id": "q1", "lang": "pt",
                          "text": "O que é Debian?", "gold_cids": ["pt:q1:0"]}]
    assert candidates[0]["cid"] == "pt:q1:0" and candidates[0]["context"] == ("Um. " * 30).strip()


def test_unknown_faq_language_names_the_param() -> None:
    with pytest.raises(PipelineError, match=r"'eval_data.faq_languages' has \['es'\].*'zh'"):
        faq.read_faq(["en", "es"], MIRROR, DOWNLOADS)


@needs_mirror
def test_real_chapter_english_and_portuguese() -> None:
    pages = {lang: sources.locate(f"debian/faq/{lang}/basic-defs.{lang}.html", MIRROR,
                                  DOWNLOADS, allow_download=False).read_bytes()
             for lang in ("en", "pt")}
    en = faq.faq_sections(pages["en"], "en")
    pt = faq.faq_sections(pages["pt"], "pt")
    anchors = ["whatisfaq", "whatisdebian", "linux", "non-linux", "difference", "gnu",
               "pronunciation"]
    assert [s.anchor for s in en] == anchors and [s.anchor for s in pt] == anchors
    assert {s.chapter for s in en + pt} == {"basic-defs"}
    assert en[0].title == "What is this FAQ?" and en[0].number == "1.1"
    assert pt[0].title == "O que é esta FAQ?"
    assert en[0].answer_text.startswith("This document gives frequently asked questions "
                                        "(with their answers!) about the Debian distribution")
    assert "perguntas feitas frequentemente" in pt[0].answer_text
    assert en[6].title == "How does one pronounce Debian and what does this word mean?"
    assert "Deb'-ee-en" in en[6].answer_text
    for section in en + pt:
        assert section.passages and all(faq.count_words(p) <= 100 for p in section.passages)
        assert "".join(section.answer_text.split()) == "".join("".join(section.passages).split())
    kept, counts = faq.aligned_sections({"en": en, "pt": pt})
    assert counts["pt"]["kept"] == 7


@needs_mirror
def test_real_faq_counts() -> None:
    read = faq.read_faq(["en", "fr", "ru", "zh"], MIRROR, DOWNLOADS, max_words=100,
                        skip_chapters=("faqinfo",), max_copied_share=0.5)
    stats = {part.lang: part.stats for part in read}
    assert {lang: s["sections"] for lang, s in stats.items()} == {
        "en": 108, "fr": 108, "ru": 108, "zh": 108}
    assert stats["en"]["questions"] == 108 and stats["zh"]["questions"] == 108
    assert stats["fr"]["dropped_untranslated_title"] == 1       # 6.7 dirtree kept in English
    assert stats["ru"]["dropped_untranslated_title"] == 12
    assert all(q["lang"] == "zh" for q in read[3].questions)


# --- Debian Install-R: the Installation Guide by FAQ-R's rules -----------------------------------

GUIDE_PAGE = """<html><body><div class="sect1"><div class="titlepage"><div><div>
<h2 class="title"><a name="module-details"></a>6.3. Using Individual Components</h2></div></div></div>
<p>In this section we describe each installer component.</p>
<div class="sect2"><div class="titlepage"><div><div><h3 class="title"><a name="idm2301"></a>6.3.1.
Setting up the installer</h3></div></div></div>
<p>Let us assume the installer has booted.</p><p>It probes your hardware.</p>
<div class="sect3"><div class="titlepage"><div><div><h4 class="title"><a name="lowmem"></a>6.3.1.1.
Low memory mode</h4></div></div></div></div>
</div></div></body></html>"""


def test_guide_sections_at_every_level_with_text_of_their_own() -> None:
    from hybrid_retrieval.debian_faq import INSTALL_GUIDE_CORPUS

    sections = faq.faq_sections(GUIDE_PAGE, "el", chapter="ch06s03", corpus=INSTALL_GUIDE_CORPUS)
    # 6.3.1.1 has no text of its own: an overview, skipped (the FAQ would raise)
    assert [(s.anchor, s.number, s.title) for s in sections] == [
        ("module-details", "6.3", "Using Individual Components"),
        ("section-6.3.1", "6.3.1", "Setting up the installer")]  # generated id -> its number
    assert sections[0].answer_text == "In this section we describe each installer component."
    assert sections[1].passages == ("Let us assume the installer has booted. It probes your "
                                    "hardware.",)


@pytest.mark.skipif(not (MIRROR / "debian" / "installation-guide" / "el").is_dir(),
                    reason="data mirror without the Installation Guide")
def test_real_install_r_aligns_sections_across_languages_and_drops_english() -> None:
    from hybrid_retrieval.debian_faq import INSTALL_GUIDE_CORPUS

    parts = {p.lang: p for p in faq.read_faq(["en", "el", "vi"], MIRROR, MIRROR.parent / "dl",
                                         max_words=100, max_copied_share=0.5,
                                         corpus=INSTALL_GUIDE_CORPUS)}
    en, el, vi = parts["en"], parts["el"], parts["vi"]
    assert en.stats["questions"] == 165 and el.stats["dropped_unaligned"] == 0
    assert el.stats["questions"] >= 155 and vi.stats["questions"] < 100  # vi: 31% left English
    groups = {q["group_id"] for q in en.questions}
    assert {q["group_id"] for q in el.questions} <= groups  # aligned by section id
    assert "module-details" in groups and any(g.startswith("section-") for g in groups)
    question = next(q for q in el.questions if q["group_id"] == "module-details")
    assert question["text"] == "Χρήση επιμέρους συστατικών"
    assert vi.stats["dropped_untranslated_title"] + vi.stats["dropped_untranslated_answer"] > 50
