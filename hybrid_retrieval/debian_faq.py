"""Debian FAQ-R and Install-R: DocBook manuals (English + translations) -> parallel question/passage sets.

Two corpora share every rule below (:class:`SectionCorpus`): the Debian FAQ 11.1 (FAQ-R: its
``<h2>`` sections) and the Debian Installation Guide for amd64 20230508+deb12u1 (Install-R:
every numbered ``sect1``..``sect5`` section with text of its own, titles ``<h2>``..``<h6>``,
anchors ``<a name>``; 19 languages).

Each numbered ``<h2>`` section of a chapter is one question: its title (section number
removed) is the question text; its own paragraphs, list items, definition lists and ``<pre>``
blocks (not its ``<h3>`` sub-sections) are the answer. The answer is split at sentence
boundaries into passages of at most ``max_words`` words; all passages of a section are the
golds of its question. Sections align across languages by the anchor id of the title
(``<h2 class="title"><a id="arches"></a>4.1. ...``), which is the same in every translation.

Translations are partly outdated: some titles and answers are left in English. A translated
section is *untranslated* (and left out of the evaluation set) when its title is, or when more
than a set share of its answer prose is copied verbatim from the English section; see
:func:`untranslated_reason`. Of the sections kept, every prose block that a language identifier
does not find in the section's language is removed before the answer is split into passages
(:func:`drop_foreign_blocks`), so a "ru" pool holds no English passages.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lxml.etree
import lxml.html

from . import sources
from .errors import PipelineError
from .language_id import in_declared_language
from .text import normalize_text, same_text_key, sentence_spans

log = logging.getLogger(__name__)

#: Two-letter code -> folder of the mirror (``debian/faq/<folder>/``). Debian's ``zh-cn``
#: (Simplified Chinese) is ``zh`` here, as in XQuAD-R/MLQA-R.
FAQ_FOLDERS: dict[str, str] = {
    "en": "en", "de": "de", "fr": "fr", "it": "it", "ja": "ja", "ko": "ko", "nl": "nl",
    "pt": "pt", "ru": "ru", "zh": "zh-cn"}

#: Chapters without questions: ``index`` is the table of contents.
INDEX_CHAPTER = "index"

#: Two-letter code -> folder of the Installation Guide (``debian/installation-guide/<folder>/``).
INSTALL_GUIDE_FOLDERS: dict[str, str] = {
    lang: lang for lang in ("ca", "cs", "da", "de", "el", "en", "es", "fr", "id", "it", "ja",
                            "ko", "nl", "pt", "ro", "ru", "sv", "vi")} | {"zh": "zh_CN"}


@dataclass(frozen=True)
class SectionCorpus:
    """A manual whose numbered sections become questions: its mirror ``folder``, language
    folders, the title tags and ``div`` classes of its sections, and whether a section without
    text of its own is skipped (a chapter's overview) or an error."""

    name: str
    folder: str
    language_dirs: dict[str, str]
    heading_tags: tuple[str, ...]
    section_classes: frozenset[str]
    skip_empty: bool

    def files(self, lang: str) -> list[str]:
        folder = self.language_dirs[faq_lang_code(lang)]
        return sources.list_files(f"debian/{self.folder}/{folder}/", ".html")


FAQ_CORPUS = SectionCorpus("debian-faq-r", "faq", FAQ_FOLDERS, ("h2",), frozenset({"section"}),
                           skip_empty=False)
INSTALL_GUIDE_CORPUS = SectionCorpus(
    "debian-install-r", "installation-guide", INSTALL_GUIDE_FOLDERS,
    ("h2", "h3", "h4", "h5", "h6"), frozenset({f"sect{n}" for n in range(1, 6)}),
    skip_empty=True)

#: Unicode character-name prefixes of the script a language is written in, for languages
#: whose script is not Latin: a title with no letter of its script is untranslated.
NATIVE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "ja": ("CJK", "HIRAGANA", "KATAKANA"), "zh": ("CJK",), "ko": ("HANGUL",),
    "ru": ("CYRILLIC",)}

# Han ideographs, kana and CJK compatibility ideographs: scripts written without spaces.
# Hangul is not here: Korean separates words with spaces.
_CJK_CHAR = "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]"
_TOKEN = re.compile(rf"{_CJK_CHAR}|[^\s\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                    rf"\uff66-\uff9f]+")
_CJK = re.compile(_CJK_CHAR)
_WORD_CHAR = re.compile(r"\w")
_SECTION_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)*)\.?\s+")
_GENERATED_ANCHOR = re.compile(r"idm\d+")

#: A CJK character counts as this many words (Chinese/Japanese words average ~2 characters).
CJK_WORDS_PER_CHAR = 0.5


@dataclass(frozen=True)
class TextBlock:
    """One block of an answer: a paragraph, list item, term or ``<pre>`` (``is_code``)."""

    text: str
    is_code: bool = False


@dataclass(frozen=True)
class FaqSection:
    """One numbered ``<h2>`` section of a Debian FAQ chapter, in one language.

    ``lang`` is the two-letter code (``zh`` for Debian's ``zh-cn``), ``anchor`` the title's
    anchor id (the same in every language), ``chapter`` the chapter id (file stem, e.g.
    ``basic-defs``), ``number`` the section number (``1.2``), ``title`` the normalised title
    without its number, ``answer_text`` the normalised answer (blocks joined by a space),
    ``passages`` the answer split into passages of at most ``max_words`` words.
    """

    lang: str
    anchor: str
    chapter: str
    number: str
    title: str
    answer_text: str
    passages: tuple[str, ...]
    blocks: tuple[TextBlock, ...] = field(default=(), repr=False)


def faq_lang_code(lang: str) -> str:
    """The two-letter code for a Debian FAQ language (``zh-cn`` -> ``zh``); others unchanged."""
    return "zh" if lang.lower() in ("zh", "zh-cn", "zh_cn") else lang


def count_words(text: str) -> float:
    """Words in ``text``: each run of non-space, non-CJK characters containing a letter or digit
    is a word, each Han/kana character ``CJK_WORDS_PER_CHAR`` of a word (no spaces to count)."""
    total = 0.0
    for token in _TOKEN.findall(text):
        if _CJK.fullmatch(token):
            total += CJK_WORDS_PER_CHAR
        elif _WORD_CHAR.search(token):
            total += 1
    return total


def _word_spans(text: str, start: int, end: int, max_words: float) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` (a sentence over ``max_words``) at word or CJK character
    boundaries into spans of at most ``max_words`` words."""
    spans: list[tuple[int, int]] = []
    piece_start: int | None = None
    piece_end = start
    words = 0.0
    for match in _TOKEN.finditer(text, start, end):
        weight = count_words(match.group())
        if piece_start is not None and words + weight > max_words:
            spans.append((piece_start, piece_end))
            piece_start, words = None, 0.0
        if piece_start is None:
            piece_start = match.start()
        words += weight
        piece_end = match.end()
    if piece_start is not None:
        spans.append((piece_start, piece_end))
    return spans


def split_passages(blocks: list[str], max_words: float) -> list[str]:
    """Pack the sentences of ``blocks`` (in order) into passages of at most ``max_words`` words.

    Sentences come from :func:`hybrid_retrieval.text.sentence_spans` within each block, so a
    block end is always a boundary; consecutive sentences (also across blocks) go into one
    passage while the total stays within ``max_words``. Within a block a passage keeps the
    original text between its sentences (no space is added between CJK sentences); blocks are
    joined with a space. A single sentence over the limit is cut at word boundaries.
    """
    if max_words <= 0:
        raise ValueError(f"max_words is {max_words}, expected > 0")
    units: list[tuple[int, int, int, float]] = []  # block, start, end, words
    for b, block in enumerate(blocks):
        for start, end in sentence_spans(block):
            words = count_words(block[start:end])
            if words > max_words:
                units.extend((b, s, e, count_words(block[s:e]))
                             for s, e in _word_spans(block, start, end, max_words))
            elif block[start:end].strip():
                units.append((b, start, end, words))

    def render(group: list[tuple[int, int, int, float]]) -> str:
        parts = []
        for b in dict.fromkeys(unit[0] for unit in group):
            spans = [unit for unit in group if unit[0] == b]
            parts.append(blocks[b][spans[0][1]:spans[-1][2]].strip())
        return " ".join(parts)

    passages: list[str] = []
    current: list[tuple[int, int, int, float]] = []
    current_words = 0.0
    for unit in units:
        if current and current_words + unit[3] > max_words:
            passages.append(render(current))
            current, current_words = [], 0.0
        current.append(unit)
        current_words += unit[3]
    if current:
        passages.append(render(current))
    return passages


def _element_text(element: lxml.html.HtmlElement) -> str:
    """Visible text of an element, footnote markers dropped, whitespace normalised."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node.tag, str) and not (node.tag == "sup"
                                              and node.get("class") == "footnote"):
            if node.text:
                parts.append(node.text)
            for child in node:
                walk(child)
        if node.tail and node is not element:
            parts.append(node.tail)

    walk(element)
    return normalize_text("".join(parts))


# Leaf text blocks of a section's content: paragraphs, <pre>, definition terms, and list items
# or definitions that hold no paragraphs of their own.
_BLOCKS_XPATH = ("descendant-or-self::*[self::p or self::pre or self::dt or "
                 "((self::li or self::dd) and not(.//p or .//pre))]")


def _section_blocks(section: lxml.html.HtmlElement,
                    section_classes: frozenset[str]) -> list[TextBlock]:
    blocks = []
    for child in section:
        if not isinstance(child.tag, str) or child.get("class") == "titlepage" \
                or child.get("class") in section_classes:
            continue  # the title, and sub-sections, are not part of the answer
        for element in child.xpath(_BLOCKS_XPATH):
            text = _element_text(element)
            if text:
                blocks.append(TextBlock(text, element.tag == "pre"))
    return blocks


def faq_sections(html: bytes | str, lang: str, *, chapter: str | None = None,
                 max_words: float = 100, source: str = "<html>",
                 corpus: SectionCorpus = FAQ_CORPUS) -> list[FaqSection]:
    """The numbered sections of one chapter page of ``corpus``, in document order.

    ``html`` is the page (bytes or text), ``lang`` its language (``zh-cn`` becomes ``zh``),
    ``chapter`` the chapter id (default: the anchor of the page's ``<h1>``), ``max_words`` the
    passage size limit (see :func:`count_words`), ``source`` the file name for error messages.
    Pages without sections (the table of contents) give an empty list; a section without an
    anchor raises :class:`PipelineError`, as does one without an answer in the FAQ (in the
    Installation Guide, a section with no text of its own is an overview and is skipped).
    """
    if isinstance(html, str):  # lxml refuses text that carries an encoding declaration
        html = html.encode("utf-8", errors="replace")
    if html.strip() and not re.search(rb"</html>\s*$", html[-512:], re.IGNORECASE):
        # lxml parses a cut-off page without complaint: the rest would silently be missing.
        raise PipelineError(f"{source}: truncated HTML (no closing </html> tag at the end), "
                            f"expected a complete page")
    try:
        root = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise PipelineError(f"{source}: not parseable HTML ({exc})") from None
    if chapter is None:
        h1_anchor = root.xpath("//h1//a[@id]")
        chapter = h1_anchor[0].get("id") if h1_anchor else Path(source).name.split(".")[0]
    code = faq_lang_code(lang)
    sections = []
    for h2 in root.iter(*corpus.heading_tags):
        if corpus.skip_empty and not h2.xpath("ancestor::div[@class='titlepage']"):
            continue  # a heading outside a section title page (e.g. a table's), not a section
        anchors = h2.xpath(".//a[@id or @name]")
        if not anchors:
            raise PipelineError(f"{source}: field '<{h2.tag}> anchor' is missing in title "
                                f"{_element_text(h2)!r}, expected <a id=...> in every <{h2.tag}>")
        anchor = anchors[0].get("id") or anchors[0].get("name")
        container = h2.getparent()
        while container is not None and container.get("class") not in corpus.section_classes:
            container = container.getparent()
        if container is None and corpus.skip_empty:
            continue  # e.g. the GPL's unnumbered sections in the Installation Guide's appendix
        if container is None:
            raise PipelineError(f"{source}: field '<{h2.tag} id={anchor}>' is outside a "
                                f"<div class=\"{'|'.join(sorted(corpus.section_classes))}\">, "
                                f"expected DocBook XHTML")
        full_title = _element_text(h2)
        match = _SECTION_NUMBER.match(full_title)
        number = match.group(1) if match else ""
        title = full_title[match.end():] if match else full_title
        if number and _GENERATED_ANCHOR.fullmatch(anchor):
            # DocBook numbers unnamed sections "idm<N>" by position in the whole file, which
            # differs between translations; the section number is what aligns them.
            anchor = f"section-{number}"
        blocks = _section_blocks(container, corpus.section_classes)
        if corpus.skip_empty and (not blocks or not number):
            continue
        if not blocks or not title:
            raise PipelineError(f"{source}: section '{anchor}' has an empty "
                                f"{'title' if not title else 'answer'}, expected text")
        texts = [block.text for block in blocks]
        sections.append(FaqSection(
            lang=code, anchor=anchor, chapter=chapter, number=number, title=title,
            answer_text=" ".join(texts), passages=tuple(split_passages(texts, max_words)),
            blocks=tuple(blocks)))
    return sections


def _has_native_letter(text: str, lang: str) -> bool:
    prefixes = NATIVE_SCRIPTS.get(lang)
    if prefixes is None:
        return True
    return any(ch.isalpha() and unicodedata.name(ch, "").startswith(prefixes) for ch in text)


def copied_share(section: FaqSection, english: FaqSection) -> float:
    """Share (by characters) of ``section``'s answer prose that is verbatim English.

    Prose means the non-``<pre>`` blocks (commands and file listings are legitimately the same
    in every language); a sentence counts as copied when it equals, after normalisation, a
    sentence of the English section's prose.
    """
    def prose_sentences(s: FaqSection) -> list[str]:
        out = []
        for block in s.blocks:
            if not block.is_code:
                out.extend(block.text[a:b] for a, b in sentence_spans(block.text))
        return out

    english_sentences = {same_text_key(s) for s in prose_sentences(english)}
    sentences = prose_sentences(section)
    total = sum(len(s) for s in sentences)
    copied = sum(len(s) for s in sentences if same_text_key(s) in english_sentences)
    return copied / total if total else 0.0


def untranslated_reason(section: FaqSection, english: FaqSection,
                        max_copied_share: float) -> str | None:
    """Why a translated section should be left out, or ``None`` if it is translated.

    ``"title"``: its title equals the English title (NFKC, whitespace, case folded), or, for a
    language with its own script (ja ko ru zh), has no letter of that script.
    ``"answer"``: more than ``max_copied_share`` of its answer prose is verbatim English
    (:func:`copied_share`). English sections are never untranslated.
    """
    if section.lang == "en":
        return None
    if (same_text_key(section.title) == same_text_key(english.title)
            or not _has_native_letter(section.title, section.lang)):
        return "title"
    if copied_share(section, english) > max_copied_share:
        return "answer"
    return None


@dataclass
class FaqLanguage:
    """One language of the FAQ set: question and candidate rows, kept sections, counts."""

    lang: str
    questions: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    sections: list[FaqSection]
    stats: dict[str, int]


def read_faq_language(lang: str, mirror: str | os.PathLike, download_dir: str | os.PathLike,
                      *, max_words: float = 100, skip_chapters: tuple[str, ...] = (),
                      corpus: SectionCorpus = FAQ_CORPUS) -> list[FaqSection]:
    """All sections of one language's chapters (raw files ``debian/<corpus folder>/<lang
    folder>/*.html``), except the table of contents and ``skip_chapters``."""
    folder = corpus.language_dirs[faq_lang_code(lang)]
    relpaths = corpus.files(lang)
    if not relpaths:
        raise PipelineError(f"debian/{corpus.folder}/{folder}/: no chapter files are known, "
                            f"expected *.html listed in {sources.CHECKSUMS_FILE.name}")
    sections: list[FaqSection] = []
    for relpath in relpaths:
        chapter = Path(relpath).name.split(".")[0]
        if chapter == INDEX_CHAPTER or chapter in skip_chapters:
            continue
        path = sources.locate(relpath, mirror, download_dir)
        sections.extend(faq_sections(path.read_bytes(), lang, chapter=chapter,
                                     max_words=max_words, source=str(path), corpus=corpus))
    anchors = [s.anchor for s in sections]
    if len(set(anchors)) != len(anchors):
        duplicates = sorted({a for a in anchors if anchors.count(a) > 1})
        raise PipelineError(f"debian/{corpus.folder}/{folder}/: section anchors {duplicates} "
                            f"occur more than once, expected unique anchors")
    return sections


def drop_foreign_blocks(sections: list[FaqSection], lang: str, max_words: float
                        ) -> tuple[list[FaqSection], dict[str, int]]:
    """Remove every prose block that is not in ``lang`` (:func:`language_id.
    in_declared_language`; ``<pre>`` blocks are language-neutral and stay) and re-split the
    answer into passages; a section left without prose is dropped. Returns the sections and
    the counts ``dropped_blocks_language_id`` and ``dropped_sections_language_id``."""
    prose = [block.text for section in sections for block in section.blocks if not block.is_code]
    verdicts = iter(in_declared_language(prose, lang))
    kept: list[FaqSection] = []
    counts = {"dropped_blocks_language_id": 0, "dropped_sections_language_id": 0}
    for section in sections:
        blocks = [block for block in section.blocks if block.is_code or next(verdicts)]
        counts["dropped_blocks_language_id"] += len(section.blocks) - len(blocks)
        if not any(not block.is_code for block in blocks):
            counts["dropped_sections_language_id"] += 1
            continue
        if len(blocks) == len(section.blocks):
            kept.append(section)
            continue
        texts = [block.text for block in blocks]
        kept.append(FaqSection(section.lang, section.anchor, section.chapter, section.number,
                               section.title, " ".join(texts),
                               tuple(split_passages(texts, max_words)), tuple(blocks)))
    return kept, counts


def aligned_sections(by_lang: dict[str, list[FaqSection]], *, max_copied_share: float = 0.5
                     ) -> tuple[dict[str, list[FaqSection]], dict[str, dict[str, int]]]:
    """Keep the sections of each language that align with English and are translated.

    ``by_lang`` maps two-letter codes (``en`` required) to sections. Returns the kept sections
    per language and counts per language: ``sections`` (read), ``kept``,
    ``dropped_untranslated_title``, ``dropped_untranslated_answer``, ``dropped_unaligned``
    (anchor not in English).
    """
    if "en" not in by_lang:
        raise PipelineError("params.yaml: 'eval_data.faq_languages' lacks 'en', expected it "
                            "(sections align to English and untranslated ones are found by "
                            "comparing with it)")
    english = {s.anchor: s for s in by_lang["en"]}
    kept: dict[str, list[FaqSection]] = {}
    counts: dict[str, dict[str, int]] = {}
    for lang, sections in by_lang.items():
        stats = {"sections": len(sections), "kept": 0, "dropped_untranslated_title": 0,
                 "dropped_untranslated_answer": 0, "dropped_unaligned": 0}
        kept[lang] = []
        for section in sections:
            if section.anchor not in english:
                stats["dropped_unaligned"] += 1
                continue
            reason = untranslated_reason(section, english[section.anchor], max_copied_share)
            if reason is not None:
                stats[f"dropped_untranslated_{reason}"] += 1
                log.debug("faq %s %s dropped (%s): %s", lang, section.anchor, reason,
                          section.title)
                continue
            kept[lang].append(section)
        stats["kept"] = len(kept[lang])
        counts[lang] = stats
    return kept, counts


def faq_rows(lang: str, sections: list[FaqSection]) -> tuple[list[dict[str, Any]],
                                                              list[dict[str, Any]]]:
    """Question and candidate rows (EVAL_QUESTIONS / EVAL_CANDIDATES columns) of one language.

    ``qid`` is ``"<lang>:<anchor>"``, ``group_id`` the anchor, ``cid``
    ``"<lang>:<anchor>:<passage number>"``; a candidate's ``context`` is its section's answer
    text (not the title, which is the question).
    """
    questions, candidates = [], []
    for section in sections:
        cids = [f"{lang}:{section.anchor}:{i}" for i in range(len(section.passages))]
        questions.append({"qid": f"{lang}:{section.anchor}", "group_id": section.anchor,
                          "lang": lang, "text": section.title, "gold_cids": cids})
        candidates.extend({"cid": cid, "lang": lang, "text": passage,
                           "context": section.answer_text}
                          for cid, passage in zip(cids, section.passages))
    return questions, candidates


def read_faq(langs: list[str], mirror: str | os.PathLike, download_dir: str | os.PathLike, *,
             max_words: float = 100, skip_chapters: tuple[str, ...] = (),
             max_copied_share: float = 0.5,
             param: str = "eval_data.faq_languages",
             corpus: SectionCorpus = FAQ_CORPUS) -> list[FaqLanguage]:
    """The Debian FAQ-R (or, with ``corpus``, Install-R) evaluation set: per language, the
    translated, aligned sections in their own language (:func:`drop_foreign_blocks`) as
    question/candidate rows. English is read even when not in ``langs`` (it is the reference
    for alignment) but only returned if asked for."""
    unknown = [lang for lang in langs if faq_lang_code(lang) not in corpus.language_dirs]
    if unknown or not langs:
        raise PipelineError(f"params.yaml: '{param}' has {unknown or 'no languages'}, "
                            f"expected a non-empty list drawn from {list(corpus.language_dirs)}")
    codes = list(dict.fromkeys(faq_lang_code(lang) for lang in langs))
    by_lang = {code: read_faq_language(code, mirror, download_dir, max_words=max_words,
                                       skip_chapters=skip_chapters, corpus=corpus)
               for code in dict.fromkeys(["en", *codes])}
    kept, counts = aligned_sections(by_lang, max_copied_share=max_copied_share)
    result = []
    for code in codes:
        sections, dropped = drop_foreign_blocks(kept[code], code, max_words)
        questions, candidates = faq_rows(code, sections)
        stats = {**counts[code], **dropped, "kept": len(sections),
                 "questions": len(questions), "candidates": len(candidates)}
        log.info("%s %s: %s", corpus.name, code, stats)
        result.append(FaqLanguage(code, questions, candidates, sections, stats))
    return result
