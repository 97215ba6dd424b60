"""Debian Reference: paragraph extraction from a chapter and en/X alignment on the real mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybrid_retrieval.debian_reference import (aligned_paragraphs, chapter_files,
                                               chapter_paragraphs, debian_language_dir)
from hybrid_retrieval.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(
    not (MIRROR / "debian" / "reference" / "pt" / "ch01.pt.html").is_file(),
    reason="data mirror not available")

CHAPTER = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Chapter 9</title></head><body>
<div class="navheader"><p>Navigation, not content</p></div>
<div class="chapter"><div class="titlepage"><h1><a id="_tips"/>Chapter 9. Tips</h1></div>
 <div class="toc"><p><strong>Table of Contents</strong></p></div>
 <p>Intro   paragraph
   over two lines.</p>
 <div class="section"><div class="titlepage"><h2><a id="_console"/>9.1. Console</h2></div>
  <p>Use <code>screen</code>.</p>
  <div class="itemizedlist"><ul><li class="listitem"><p>Item one</p></li></ul></div>
  <div class="table"><table><tr><td><p>cell</p></td></tr></table></div>
  <p> </p>
 </div>
</div></body></html>"""


def test_chapter_paragraphs_keeps_positions_and_sections() -> None:
    paragraphs = chapter_paragraphs(CHAPTER)
    assert [p.text for p in paragraphs] == [
        "Intro paragraph over two lines.", "Use screen.", "Item one", "cell", ""]
    assert [p.index for p in paragraphs] == [0, 1, 2, 3, 4]
    assert [p.section for p in paragraphs] == ["_tips", "_console", "_console", "_console",
                                               "_console"]
    assert chapter_paragraphs(CHAPTER.encode()) == paragraphs
    with pytest.raises(PipelineError, match="no <div class='chapter'>"):
        chapter_paragraphs("<html><body><p>no chapter</p></body></html>")


def test_language_dirs() -> None:
    assert debian_language_dir("zh") == "zh-cn" and debian_language_dir("pt") == "pt"
    assert sorted(chapter_files("pt"))[:2] == ["apa", "ch01"]
    assert chapter_files("zh")["ch01"] == "debian/reference/zh-cn/ch01.zh-cn.html"
    assert chapter_files("xx") == {}


@needs_mirror
def test_aligned_paragraphs_en_pt(tmp_path) -> None:
    pairs = aligned_paragraphs(MIRROR, tmp_path, "en", "pt")
    assert 2000 < len(pairs) < 2400  # 2,199 with the 2.100 packages
    assert all(p.source and p.target and p.source != p.target for p in pairs)
    assert {p.doc for p in pairs} == {f"ch{i:02d}" for i in range(1, 13)}  # apa: 33 vs 34
    first = pairs[0]
    assert (first.doc, first.section) == ("ch01", "_gnu_linux_tutorials")
    assert first.source.startswith("I think learning a computer system is like learning")
    assert first.target.startswith("Acho que aprender um sistema de computador")
    with pytest.raises(PipelineError, match="no chapters in language 'xx'"):
        aligned_paragraphs(MIRROR, tmp_path, "en", "xx")


# --- the Debian Administrator's Handbook (div.para paragraphs), real pages ----------------------

needs_handbook = pytest.mark.skipif(
    not (MIRROR / "debian" / "handbook" / "vi-VN" / "sect.apt-get.html").is_file(),
    reason="data mirror without the Handbook")


@needs_handbook
def test_handbook_pages_align_with_english_by_position() -> None:
    from hybrid_retrieval.debian_reference import HANDBOOK, HANDBOOK_LAYOUT, chapter_headings

    files = HANDBOOK.files("vi")
    assert len(files) == 126 and "index" not in files  # the table of contents is skipped
    assert files["sect.apt-get"] == "debian/handbook/vi-VN/sect.apt-get.html"
    pages = {lang: (MIRROR / HANDBOOK.files(lang)["sect.apt-get"]).read_bytes()
             for lang in ("en", "vi", "ar")}
    paragraphs = {lang: chapter_paragraphs(html, HANDBOOK_LAYOUT) for lang, html in pages.items()}
    assert len(paragraphs["en"]) == len(paragraphs["vi"]) == len(paragraphs["ar"]) == 73
    assert [(p.section, p.kind) for p in paragraphs["en"]] == \
        [(p.section, p.kind) for p in paragraphs["ar"]]
    assert paragraphs["en"][0].section == "sect.apt-get"
    assert {p.kind for p in paragraphs["en"]} == {"body", "admonition"}  # sidebars are boxes
    # Untranslated paragraphs are English copies (the pipeline drops them): this page's first.
    assert paragraphs["vi"][0].text == paragraphs["en"][0].text
    translated = {lang: sum(p.text != e.text for p, e in zip(paragraphs[lang], paragraphs["en"]))
                  for lang in ("vi", "ar")}
    assert 0 < translated["vi"] <= translated["ar"] < 73, translated
    headings = chapter_headings(pages["vi"], HANDBOOK_LAYOUT)
    assert (headings[0].section, headings[0].number, headings[0].title) == \
        ("sect.apt-get", "6.2", "Các lệnh aptitude, apt-get, và apt")


def test_handbook_page_without_a_body_is_an_error() -> None:
    from hybrid_retrieval.debian_reference import HANDBOOK_LAYOUT

    with pytest.raises(PipelineError, match="Debian Handbook page: no <div class='chapter'>"):
        chapter_paragraphs("<html><body><div class='book'>x</div></body></html>", HANDBOOK_LAYOUT)
