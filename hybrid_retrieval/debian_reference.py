"""Paragraphs of the Debian manuals (Reference, Administrator's Handbook) and their alignment.

Both are DocBook HTML translated with po4a, paragraph by paragraph, so a page and its
translation have the same paragraphs in the same order *when the translation is up to date*.
What differs is the markup (:class:`DocBookLayout`) and the file layout (:class:`DebianBook`):

* the Debian Reference 2.100 (``debian/reference/<lang>/chNN.<lang>.html``): ``<p>``
  paragraphs, sections ``div.section`` with ``<a id>`` anchors;
* the Debian Administrator's Handbook 11.20220922 (``debian/handbook/<locale>/<page>.html``):
  ``div.para`` paragraphs, the same sections; untranslated paragraphs are English copies.

:func:`aligned_paragraphs` pairs Reference paragraphs by position, only in chapters whose
paragraph counts are equal, and drops pairs where the "translation" is the English text itself
(untranslated strings, commands, package names). For en/pt that leaves ~2,200 pairs in 12 of the
13 chapters.

Used by the ``mt_quality`` stage (a human-translated, technical-domain MT test set) and by the
domain-data stage (monolingual technical paragraphs per language).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Mapping

from lxml import html as lxml_html

from .errors import PipelineError
from .sources import list_files, locate
from .text import normalize_text

log = logging.getLogger(__name__)

#: Our language codes -> the Debian documentation's folder names where they differ.
DEBIAN_LANGUAGE_DIRS: dict[str, str] = {"zh": "zh-cn"}


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


@dataclass(frozen=True)
class DocBookLayout:
    """How one manual's HTML marks its parts: ``paragraphs`` (XPath of every paragraph of the
    page body, in document order, the table of contents excluded), ``bodies`` (classes of the
    ``div`` that holds a page's text), ``sections`` (classes of the ``div`` elements whose
    title anchor names the section of the paragraphs inside)."""

    paragraphs: str
    bodies: tuple[str, ...]
    sections: frozenset[str]
    page: str = "Debian Reference chapter"  # what a page is called in error messages


REFERENCE_LAYOUT = DocBookLayout(
    paragraphs=(f"//div[{_has_class('chapter')} or {_has_class('appendix')}]"
                f"//p[not(ancestor::div[{_has_class('toc')}])]"),
    bodies=("chapter", "appendix"), sections=frozenset({"section", "chapter", "appendix"}))

# A Handbook page is a chapter (its first pages) or one section (``sect.*.html``).
HANDBOOK_LAYOUT = DocBookLayout(
    paragraphs=(f"//div[{_has_class('chapter')} or {_has_class('appendix')} or "
                f"{_has_class('section')} or {_has_class('preface')}]"
                f"//div[{_has_class('para')} and not(ancestor::div[{_has_class('toc')}])"
                f" and not(ancestor::div[{_has_class('para')}])]"),
    bodies=("chapter", "appendix", "section", "preface"),
    sections=frozenset({"section", "chapter", "appendix", "preface"}),
    page="Debian Handbook page")


#: Values of :attr:`Paragraph.kind`: running text, a list item, a tip/note/caution/warning box,
#: a table or figure caption ("Table 2.1. List of ..."), a footnote.
PARAGRAPH_KINDS = ("body", "list", "admonition", "caption", "footnote")
_ADMONITION_CLASSES = {"note", "tip", "caution", "warning", "important", "sidebar"}


@dataclass(frozen=True)
class Paragraph:
    """One ``<p>`` of a chapter.

    ``index`` is its position among the chapter's paragraphs (the alignment key across
    languages), ``section`` the anchor id of the innermost enclosing section (the chapter's id
    for paragraphs before the first section), ``text`` its whitespace-normalised text,
    ``kind`` where it stands (one of :data:`PARAGRAPH_KINDS`).
    """

    index: int
    section: str
    text: str
    kind: str = "body"


@dataclass(frozen=True)
class Heading:
    """The title of one numbered section (``<h2>``..``<h5>``) of a chapter.

    ``section`` is the section's anchor id (the same in every translation, and equal to
    :attr:`Paragraph.section` of the section's own paragraphs), ``level`` 1 for ``x.y``, 2 for
    ``x.y.z``, ...; ``number`` the section number (``2.1.1``), ``title`` the normalised title
    without its number.
    """

    section: str
    level: int
    number: str
    title: str


@dataclass(frozen=True)
class ParagraphPair:
    """An English paragraph and its human translation: ``doc`` is the chapter (e.g. ``ch02``)."""

    doc: str
    index: int
    section: str
    source: str
    target: str


def debian_language_dir(lang: str) -> str:
    """The Debian folder name for our language code (``zh`` -> ``zh-cn``, others unchanged)."""
    return DEBIAN_LANGUAGE_DIRS.get(lang, lang)


def _section_id(element: lxml_html.HtmlElement, layout: DocBookLayout) -> str:
    for ancestor in element.iterancestors("div"):
        classes = (ancestor.get("class") or "").split()
        if layout.sections & set(classes):
            anchors = ancestor.xpath("./div[contains(@class, 'titlepage')]//a[@id]")
            if anchors:
                return anchors[0].get("id")
    return ""


def _classes(element: lxml_html.HtmlElement) -> set[str]:
    return set((element.get("class") or "").split())


def _paragraph_kind(element: lxml_html.HtmlElement) -> str:
    """Where a ``<p>`` stands: see :data:`PARAGRAPH_KINDS` (the innermost container decides)."""
    if "title" in _classes(element) or "formalpara-title" in _classes(element):
        return "caption"
    for ancestor in element.iterancestors():
        classes = _classes(ancestor)
        if ancestor.tag == "li":
            return "list"
        if classes & _ADMONITION_CLASSES:
            return "admonition"
        if classes & {"footnote", "footnotes"}:
            return "footnote"
        if classes & {"section", "chapter", "appendix"}:
            break
    return "body"


_HTML_END = re.compile(rb"</html>\s*$", re.IGNORECASE)


def _parse_chapter(html: str | bytes, layout: DocBookLayout) -> lxml_html.HtmlElement:
    if isinstance(html, str):
        html = html.encode("utf-8", errors="replace")
    if html.strip() and not _HTML_END.search(html[-512:]):
        # lxml parses a cut-off page without complaint: the rest would silently be missing.
        raise PipelineError(f"{layout.page}: truncated HTML (no closing </html> tag "
                            "at the end), expected a complete page")
    try:
        return lxml_html.document_fromstring(html)
    except (ValueError, lxml_html.etree.ParserError) as exc:
        raise PipelineError(f"{layout.page}: not parseable HTML ({exc})") from None


# Section titles: "2.1.1. Package configuration" in every translation (DocBook numbering).
_SECTION_TITLE_XPATH = ("//div[contains(concat(' ', normalize-space(@class), ' '), ' section ')]"
                        "/div[contains(@class, 'titlepage')]"
                        "//*[self::h2 or self::h3 or self::h4 or self::h5 or self::h6]")
_SECTION_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)+)\.?\s+")


def chapter_headings(html: str | bytes, layout: DocBookLayout = REFERENCE_LAYOUT) -> list[Heading]:
    """The numbered section titles of one chapter (or Handbook page), in document order.

    Input: the page's XHTML and its :class:`DocBookLayout`. Output: one :class:`Heading` per
    section title that carries an anchor id and a section number (the chapter title itself is
    not included).
    """
    headings = []
    for element in _parse_chapter(html, layout).xpath(_SECTION_TITLE_XPATH):
        anchors = element.xpath(".//a[@id]")
        text = normalize_text(element.text_content())
        match = _SECTION_NUMBER.match(text)
        if not anchors or not match:
            continue
        number = match.group(1)
        headings.append(Heading(anchors[0].get("id"), number.count("."), number,
                                text[match.end():].strip()))
    return headings


def chapter_paragraphs(html: str | bytes,
                       layout: DocBookLayout = REFERENCE_LAYOUT) -> list[Paragraph]:
    """Every paragraph of one chapter (or Handbook page), in document order.

    Input: the page's XHTML (text or bytes) and its :class:`DocBookLayout`. Output: one
    :class:`Paragraph` per paragraph of the page body (tables, list items and footnotes
    included, the table of contents excluded), *empty ones included*, so that ``index`` is
    comparable across translations. Raises :class:`PipelineError` if the page has no body.
    """
    root = _parse_chapter(html, layout)
    elements = root.xpath(layout.paragraphs)
    if not elements and not root.xpath(
            "//div[" + " or ".join(f"contains(@class, '{b}')" for b in layout.bodies) + "]"):
        raise PipelineError(f"{layout.page}: no " + " or ".join(
            f"<div class='{b}'>" for b in layout.bodies) + " body found")
    return [Paragraph(index, _section_id(p, layout), normalize_text(p.text_content()),
                      _paragraph_kind(p)) for index, p in enumerate(elements)]


def chapter_files(lang: str) -> dict[str, str]:
    """Chapter name (``ch01`` ... ``apa``) -> mirror path of that chapter in ``lang``."""
    return REFERENCE.files(lang)


@dataclass(frozen=True)
class DebianBook:
    """One po4a-translated Debian manual: its ``name`` (``params.yaml: domain.books``), mirror
    ``folder`` under ``debian/``, the language folders it has (our code -> folder), the
    ``id_prefix`` of the pairs built from it and its :class:`DocBookLayout`."""

    name: str
    folder: str
    language_dirs: Mapping[str, str]
    id_prefix: str
    layout: DocBookLayout
    skip_pages: frozenset[str] = frozenset()

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.language_dirs)

    def files(self, lang: str) -> dict[str, str]:
        """Page name -> mirror path of that page in ``lang`` (empty if the book lacks it)."""
        folder = self.language_dirs.get(lang)
        if folder is None:
            return {}
        suffix = f".{folder}.html" if self.name == "reference" else ".html"
        files = list_files(f"debian/{self.folder}/{folder}/", suffix)
        pages = {os.path.basename(path)[:-len(suffix)]: path for path in files}
        return {page: path for page, path in pages.items() if page not in self.skip_pages}


REFERENCE = DebianBook(
    "reference", "reference",
    {lang: debian_language_dir(lang) for lang in ("en", "de", "es", "fr", "id", "it", "ja",
                                                  "pt", "zh")},
    "debref", REFERENCE_LAYOUT)

# zh-TW (Traditional script) is left out: our "zh" is Simplified, as in XQuAD-R / MLQA-R.
HANDBOOK = DebianBook(
    "handbook", "handbook",
    {"en": "en-US", "ar": "ar-MA", "ca": "ca-ES", "cs": "cs-CZ", "da": "da-DK", "de": "de-DE",
     "el": "el-GR", "es": "es-ES", "fa": "fa-IR", "fr": "fr-FR", "hr": "hr-HR", "id": "id-ID",
     "it": "it-IT", "ja": "ja-JP", "ko": "ko-KR", "nb": "nb-NO", "nl": "nl-NL", "pl": "pl-PL",
     "pt": "pt-BR", "ro": "ro-RO", "ru": "ru-RU", "sv": "sv-SE", "tr": "tr-TR", "vi": "vi-VN",
     "zh": "zh-CN"},
    "dahb", HANDBOOK_LAYOUT, skip_pages=frozenset({"index"}))

#: ``params.yaml: domain.books`` values -> the book.
DEBIAN_BOOKS: dict[str, DebianBook] = {book.name: book for book in (REFERENCE, HANDBOOK)}


def aligned_paragraphs(mirror: str | os.PathLike, download_dir: str | os.PathLike,
                       src_lang: str, tgt_lang: str) -> list[ParagraphPair]:
    """Position-aligned (src, tgt) paragraph pairs of the Debian Reference.

    Inputs: the data mirror and download folder (``params.yaml: data``) and two of our language
    codes (``zh`` is Debian's ``zh-cn``). Chapters present in both languages are paired by
    name; a chapter whose paragraph counts differ is skipped (its translation is out of date,
    so positions do not correspond) and logged. Pairs with an empty side or with identical
    normalised texts (left untranslated) are dropped. Output: pairs in chapter, then paragraph
    order. Raises :class:`PipelineError` if a language has no chapters.
    """
    src_files, tgt_files = chapter_files(src_lang), chapter_files(tgt_lang)
    for lang, files in ((src_lang, src_files), (tgt_lang, tgt_files)):
        if not files:
            raise PipelineError(f"debian/reference/{debian_language_dir(lang)}/: the Debian "
                                f"Reference has no chapters in language '{lang}'")
    pairs: list[ParagraphPair] = []
    skipped: list[str] = []
    for doc in sorted(src_files.keys() & tgt_files.keys()):
        try:
            src = chapter_paragraphs(locate(src_files[doc], mirror, download_dir).read_bytes())
            tgt = chapter_paragraphs(locate(tgt_files[doc], mirror, download_dir).read_bytes())
        except PipelineError as exc:
            raise PipelineError(f"{src_files[doc]} / {tgt_files[doc]}: {exc}") from None
        if len(src) != len(tgt):
            skipped.append(f"{doc} ({len(src)} vs {len(tgt)} paragraphs)")
            continue
        pairs.extend(ParagraphPair(doc, s.index, s.section, s.text, t.text)
                     for s, t in zip(src, tgt) if s.text and t.text and s.text != t.text)
    if skipped:
        log.info("debian reference %s/%s: skipped chapters with unequal paragraph counts: %s",
                 src_lang, tgt_lang, ", ".join(skipped))
    return pairs
