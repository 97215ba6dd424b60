"""Debian Reference -> pseudo query/passage pairs for domain adaptation (mono- and cross-lingual).

Pipeline (:func:`build_domain_pairs`), per language of ``params.yaml: domain.languages``:

1. **Paragraphs** (:func:`hybrid_retrieval.debian_reference.chapter_paragraphs`, lxml): every
   ``<p>`` of the chapter body. Running text, list items and tip/note/caution boxes are kept;
   table/figure captions and footnotes are dropped. ``<pre>`` command listings and tables'
   cells are not ``<p>`` and never enter (inline ``<code>`` inside a sentence stays as text).
   A translated paragraph whose text equals an English paragraph of the same chapter is left
   untranslated (or language-neutral, e.g. a command name) and is dropped for that language.
2. **Alignment** (:func:`chapter_alignment`): po4a translates paragraph by paragraph, so a chapter
   aligns with English when it has the same number of paragraphs *and* the same section and
   kind at every position. Aligned chapters share one segmentation into blocks, so block ``b``
   of a chapter is the same text in every language.
3. **Blocks** (:func:`make_blocks`): consecutive kept paragraphs of one section, packed greedily
   up to ``block_max_words`` (English word counts for aligned chapters). A block is the passage
   unit: Debian Reference paragraphs are short (1.4 sentences on average), so a single paragraph
   is too small for the Inverse Cloze Task. Exact and near-duplicate blocks (MinHash over
   character 5-grams, verified Jaccard >= ``near_duplicate_jaccard``) are dropped per language.
4. **Pairs**, at most one per block and (query language, passage language), so that no two
   passages of a training group overlap (two ICT pairs of one block would each be the other's
   false negative, the second passage holding the first query verbatim):

   * ``heading``: the title of the block's section -> the block, for the first block of a
     numbered section (the closest to Debian FAQ-R, whose queries are section titles);
   * ``ict`` (Inverse Cloze Task, Lee et al. 2019): a sentence of the block -> the rest of the
     block. With probability ``ict_keep_query_prob`` the sentence stays in the passage (as in
     ORQA: the model must also learn lexical matching, not only context). The sentence is the
     first of the block's sentences, in a seeded order, that passes the length filter.

   Cross-lingual pairs take the query (a heading or an ICT sentence) in language X and the
   aligned block in language Y (``cross_lingual_scope``: ``english`` = en<->X, ``all`` = every
   ordered X != Y, non-English pairs aligned through the English original). An ICT query's
   translation is removed from the passage like in the monolingual case: the sentence at the
   same position when its paragraph has as many sentences in Y as in X, else the paragraph.
5. **Filters**: word ranges for ICT queries, heading queries and passages (a Han/kana character
   counts half a word: :func:`hybrid_retrieval.debian_faq.count_words`); exact duplicate queries
   and passages within a (query language, passage language) group; Debian FAQ-R leakage
   (:class:`leakage.FaqLeakageGuard`); a seeded cap per group.

Every random choice is a hash of (seed, what, pair id), so the output does not depend on the order
of the work and is identical on a rerun. A pair's ``id`` names its source (chapter, block,
method, query position) and is shared by the same source pair in every language pair, as the
SQuAD id is in the parallel shards; it is unique within a (query_lang, passage_lang) group.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .debian_faq import count_words
from .debian_reference import (DEBIAN_BOOKS, REFERENCE, DebianBook, Heading, Paragraph,
                               chapter_headings, chapter_paragraphs)
from .config import invalid, param, read_section
from .errors import PipelineError
from .progress import track
from .schemas import DOMAIN_PAIRS, SHARD
from .shards import CROSS, MONO, pair_kind
from .sources import locate
from .language_id import IDENTIFIER, in_declared_language
from .leakage import FaqLeakageGuard
from .text import normalize_text, same_text_key as dedup_key, sentence_spans

log = logging.getLogger(__name__)

#: The languages of the Debian Reference 2.100 (``zh`` is Debian's ``zh-cn``).
#: Every language some book has (the choices of ``domain.languages``).
BOOK_LANGUAGES = tuple(sorted({lang for book in DEBIAN_BOOKS.values() for lang in book.languages}))
#: The default: the Reference's nine and the Handbook's low-resource ar ru nl tr vi.
DOMAIN_LANGUAGES = ("en", "de", "es", "fr", "id", "it", "ja", "pt", "zh",
                    "ar", "nl", "ru", "tr", "vi")
#: Paragraph kinds that become passage text (captions and footnotes are dropped).
KEPT_KINDS = frozenset({"body", "list", "admonition"})
ICT, HEADING = "ict", "heading"
SOURCE = "domain"


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

class CrossScope(StrEnum):
    """``domain.cross_lingual_scope``: en<->X pairs only, or every ordered X != Y."""

    ENGLISH = "english"
    ALL = "all"


def domain_language(lang: object) -> str:
    """Our code for a Debian Reference language (``zh-cn`` -> ``zh``), unchecked."""
    return "zh" if isinstance(lang, str) and lang.lower() in ("zh-cn", "zh_cn") else lang


def _domain_languages(values: list[Any], where: str) -> list[Any]:
    return [domain_language(lang) for lang in values]


def _word_range(value: list[Any], where: str) -> tuple[float, float]:
    if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                  for v in value) or not 0 < value[0] <= value[1]:
        raise invalid(where, value, "[min, max] word counts with 0 < min <= max")
    return float(value[0]), float(value[1])


def _words(default: tuple[float, float], help: str) -> Any:  # noqa: A002
    return param(default, help=f"[min, max] words of {help} (a Han/kana character counts 0.5)",
                 check=_word_range, required=True)


@dataclass(frozen=True)
class DomainConfig:
    """Validated ``domain`` section of ``params.yaml`` (see :func:`read_domain_config`).

    The defaults serve code that builds a config directly; the params must name every key.
    """

    languages: tuple[str, ...] = param(
        DOMAIN_LANGUAGES, help="languages to build pairs in, where a book has enough text "
        "(zh-cn = zh)", check=_domain_languages, choices=BOOK_LANGUAGES, required=True)
    books: tuple[str, ...] = param(
        ("reference", "handbook"), help="Debian manuals to read (reference: Debian Reference "
        "2.100; handbook: Debian Administrator's Handbook 11.20220922)",
        choices=tuple(DEBIAN_BOOKS), required=True)
    min_paragraphs: int = param(
        200, help="a book gives pairs in a language only with at least this many usable "
        "translated paragraphs there (English: always)", low=0, required=True)
    cross_lingual: bool = param(True, help="also cross-lingual pairs (false: monolingual only)",
                                required=True)
    cross_lingual_scope: CrossScope = param(
        CrossScope.ALL, help="english: en<->X pairs only; all: every ordered X != Y "
        "(aligned via English)", required=True)
    seed: int = param(13, help="seed of every random choice (hashed per pair)", required=True)
    block_max_words: float = param(60, help="passage unit: consecutive paragraphs of one "
                                   "section, up to this many words", low=5, high=1000,
                                   required=True)
    ict_keep_query_prob: float = param(0.1, help="ICT: P(the query sentence stays in its "
                                       "passage), as in ORQA", low=0, high=1, required=True)
    ict_query_words: tuple[float, float] = _words((5, 40), "an ICT query sentence")
    heading_query_words: tuple[float, float] = _words((1, 20), "a heading query")
    passage_words: tuple[float, float] = _words((10, 150), "a passage")
    near_duplicate_jaccard: float = param(0.8, help="character 5-gram Jaccard at/above which "
                                          "a block is a near duplicate and dropped",
                                          low=0.1, high=1, required=True)
    max_mono_pairs_per_language: int = param(3000, help="cap on monolingual pairs per "
                                             "language (seeded)", low=0, required=True)
    max_cross_pairs_per_language: int = param(3000, help="cap on cross-lingual pairs per "
                                              "query language, split over passage languages",
                                              low=0, required=True)
    leakage_min_chars: int = param(30, help="Debian FAQ-R containment is checked for texts of "
                                   "at least this many characters", low=5, required=True)


def read_domain_config(params: Mapping[str, Any],
                       params_path: str = "params.yaml") -> DomainConfig:
    """Check the ``domain`` section of the params and return it as a :class:`DomainConfig`.

    Raises :class:`PipelineError` naming ``params_path``, ``domain.<key>`` and the expected
    values, e.g. for a language the Debian Reference does not have.
    """
    config = read_section(DomainConfig, params, "domain", params_path)
    if config.cross_lingual and config.cross_lingual_scope == CrossScope.ENGLISH \
            and "en" not in config.languages:
        raise PipelineError(f"{params_path}: 'domain.cross_lingual_scope' is 'english' (en<->X "
                            f"pairs) but 'domain.languages' {params['domain']['languages']!r} "
                            f"lacks 'en', expected 'en' among them or scope 'all'")
    return config


# ---------------------------------------------------------------------------------------------
# Deterministic randomness and small text helpers
# ---------------------------------------------------------------------------------------------

def stable_uniform(seed: int, *parts: object) -> float:
    """A number in [0, 1) that depends only on ``seed`` and ``parts`` (blake2b, not ``hash``)."""
    key = "\x1f".join(map(str, (seed, *parts))).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2.0 ** 64


def in_range(words: float, bounds: tuple[float, float]) -> str | None:
    """``None`` when ``bounds[0] <= words <= bounds[1]``, else ``"too_short"``/``"too_long"``."""
    if words < bounds[0]:
        return "too_short"
    if words > bounds[1]:
        return "too_long"
    return None


def remove_span(text: str, span: tuple[int, int]) -> str:
    """``text`` without ``text[span[0]:span[1]]``, whitespace normalised."""
    return normalize_text(text[:span[0]] + " " + text[span[1]:])


# ---------------------------------------------------------------------------------------------
# Chapters, alignment and blocks
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chapter:
    """One chapter of the Debian Reference in one language: paragraphs and section titles."""

    lang: str
    doc: str
    paragraphs: tuple[Paragraph, ...]
    headings: tuple[Heading, ...]


def read_chapters(lang: str, mirror: str | os.PathLike, download_dir: str | os.PathLike,
                  book: DebianBook = REFERENCE) -> dict[str, Chapter]:
    """Every chapter (page) of ``book`` in ``lang`` (``doc`` -> :class:`Chapter`),
    checksum-verified (``locate``)."""
    files = book.files(lang)
    if not files:
        raise PipelineError(f"debian/{book.folder}/{book.language_dirs.get(lang, lang)}/: the "
                            f"Debian {book.name} has no pages in language '{lang}'")
    chapters = {}
    for doc, relpath in sorted(files.items()):
        html = locate(relpath, mirror, download_dir).read_bytes()
        try:
            chapters[doc] = Chapter(lang, doc, tuple(chapter_paragraphs(html, book.layout)),
                                    tuple(chapter_headings(html, book.layout)))
        except PipelineError as exc:
            raise PipelineError(f"{relpath}: {exc}") from None
    return chapters


def chapter_alignment(english: Chapter, other: Chapter) -> str | None:
    """``None`` when ``other`` aligns paragraph by paragraph with ``english``, else the reason.

    Aligned means the same number of paragraphs and, at every position, the same section
    anchor and the same kind (a list item where English has a list item, ...).
    """
    if len(english.paragraphs) != len(other.paragraphs):
        return f"{len(other.paragraphs)} paragraphs vs {len(english.paragraphs)} in English"
    for en, xx in zip(english.paragraphs, other.paragraphs):
        if (en.section, en.kind) != (xx.section, xx.kind):
            return (f"paragraph {en.index}: section/kind {xx.section}/{xx.kind} vs "
                    f"{en.section}/{en.kind} in English")
    return None


@dataclass(frozen=True)
class Block:
    """Consecutive paragraphs of one section: the passage unit.

    ``number`` is the block's position in its chapter, ``indices`` the paragraph indices,
    ``first_of_section`` whether it starts its section (then the section title is its query
    for a heading pair).
    """

    doc: str
    number: int
    section: str
    indices: tuple[int, ...]
    first_of_section: bool


def make_blocks(doc: str, paragraphs: Sequence[Paragraph], max_words: float) -> list[Block]:
    """Pack the usable paragraphs (kind in :data:`KEPT_KINDS`, non-empty) of a chapter into blocks.

    Consecutive paragraphs of the same section go into one block while its word count stays
    within ``max_words``; a block never spans two sections. A paragraph longer than
    ``max_words`` is a block of its own (the passage filter decides about it later).
    """
    blocks: list[Block] = []
    current: list[int] = []
    current_words = 0.0
    current_section: str | None = None
    sections_seen: set[str] = set()

    def close() -> None:
        if current:
            blocks.append(Block(doc, len(blocks), current_section or "", tuple(current),
                                current_section not in sections_seen))
            sections_seen.add(current_section or "")

    for paragraph in paragraphs:
        if paragraph.kind not in KEPT_KINDS or not paragraph.text:
            continue
        words = count_words(paragraph.text)
        if current and (paragraph.section != current_section
                        or current_words + words > max_words):
            close()
            current, current_words = [], 0.0
        current_section = paragraph.section
        current.append(paragraph.index)
        current_words += words
    close()
    return blocks


@dataclass
class LanguageView:
    """What one language contributes to the pairs of one chapter.

    ``texts`` maps paragraph index -> text for the usable paragraphs of this language (kept
    kind, non-empty, translated); ``titles`` maps section anchor -> usable section title.
    ``blocks`` is the chapter's segmentation (English's when ``aligned``); ``kept_blocks`` the
    numbers of the blocks that survived de-duplication in this language.
    """

    lang: str
    doc: str
    aligned: bool
    blocks: list[Block]
    texts: dict[int, str]
    titles: dict[str, str]
    kept_blocks: set[int] = field(default_factory=set)
    id_prefix: str = REFERENCE.id_prefix  # the book's, first part of every pair id
    _spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict, repr=False)

    def sentences(self, index: int) -> list[tuple[int, int]]:
        """Sentence spans of paragraph ``index`` (cached)."""
        if index not in self._spans:
            self._spans[index] = sentence_spans(self.texts[index])
        return self._spans[index]

    def block_paragraphs(self, block: Block) -> list[int]:
        """The block's paragraph indices that this language has text for."""
        return [i for i in block.indices if i in self.texts]

    def block_text(self, block: Block) -> str:
        return " ".join(self.texts[i] for i in self.block_paragraphs(block))

    def doc_id(self) -> str:
        """Chapter part of a pair id: the chapter, qualified by language when not aligned."""
        return self.doc if self.aligned else f"{self.doc}@{self.lang}"


def language_view(chapter: Chapter, english: Chapter, aligned: bool,
                  english_blocks: list[Block], max_words: float,
                  counts: Counter, id_prefix: str = REFERENCE.id_prefix) -> LanguageView:
    """Usable paragraphs and titles of ``chapter`` (``english`` is the reference chapter).

    A paragraph is usable when it is non-empty, of a kept kind, not a copy of an English
    paragraph of the chapter and in the chapter's language (:func:`language_id.
    in_declared_language`: partly translated or third-language paragraphs are dropped).
    Counts per paragraph outcome go into ``counts`` (``paragraphs``, ``empty``, ``caption``,
    ``footnote``, ``untranslated``, ``not_declared_language``, ``usable``; ``headings``,
    ``untranslated_headings``).
    """
    is_english = chapter.lang == "en"
    english_texts = {p.text for p in english.paragraphs}
    candidates: list[Paragraph] = []
    for paragraph in chapter.paragraphs:
        counts["paragraphs"] += 1
        if not paragraph.text:
            counts["empty"] += 1
        elif paragraph.kind not in KEPT_KINDS:
            counts[paragraph.kind] += 1
        elif not is_english and paragraph.text in english_texts:
            counts["untranslated"] += 1
        else:
            candidates.append(paragraph)
    declared = in_declared_language([p.text for p in candidates], chapter.lang)
    texts: dict[int, str] = {}
    for paragraph, in_language in zip(candidates, declared):
        if in_language:
            texts[paragraph.index] = paragraph.text
            counts["usable"] += 1
        else:
            counts["not_declared_language"] += 1
    english_titles = {h.section: h.title for h in english.headings}
    titles: dict[str, str] = {}
    for heading in chapter.headings:
        counts["headings"] += 1
        if not heading.title:
            continue
        if not is_english and english_titles.get(heading.section) == heading.title:
            counts["untranslated_headings"] += 1
            continue
        titles[heading.section] = heading.title
    blocks = english_blocks if aligned else make_blocks(chapter.doc, chapter.paragraphs,
                                                        max_words)
    return LanguageView(chapter.lang, chapter.doc, aligned, blocks, texts, titles,
                        id_prefix=id_prefix)


# ---------------------------------------------------------------------------------------------
# Near-duplicate detection
# ---------------------------------------------------------------------------------------------

_MINHASH_PRIME = 4294967311  # the first prime above 2**32: (a * h + b) stays below 2**64


def _shingles(text: str, size: int) -> set[int]:
    key = dedup_key(text)
    if len(key) <= size:
        return {zlib.crc32(key.encode("utf-8"))}
    return {zlib.crc32(key[i:i + size].encode("utf-8")) for i in range(len(key) - size + 1)}


def duplicate_flags(texts: Sequence[str], threshold: float, *, shingle_size: int = 5,
                    num_hashes: int = 64, bands: int = 16, seed: int = 0) -> list[str | None]:
    """Mark each text that repeats an earlier *kept* text: ``"duplicate"`` (equal
    :func:`dedup_key`), ``"near_duplicate"`` (Jaccard similarity of character
    ``shingle_size``-gram sets >= ``threshold``) or ``None`` (kept).

    Candidates come from MinHash LSH (``num_hashes`` hashes in ``bands`` bands) and are verified
    with the exact Jaccard similarity, so the result has no false positives; at a threshold of
    0.8 a true near-duplicate is missed with probability < 0.1 %. Empty texts are kept.
    """
    if num_hashes % bands:
        raise ValueError(f"num_hashes {num_hashes} is not a multiple of bands {bands}")
    rows = num_hashes // bands
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2 ** 32, size=num_hashes, dtype=np.uint64)
    b = rng.integers(0, 2 ** 32, size=num_hashes, dtype=np.uint64)
    flags: list[str | None] = [None] * len(texts)
    exact: set[str] = set()
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    shingle_sets: dict[int, set[int]] = {}
    for i, text in enumerate(texts):
        key = dedup_key(text)
        if not key:
            continue
        if key in exact:
            flags[i] = "duplicate"
            continue
        shingles = _shingles(text, shingle_size)
        values = np.fromiter(shingles, dtype=np.uint64, count=len(shingles))
        signature = ((values[None, :] * a[:, None] + b[:, None]) % _MINHASH_PRIME).min(axis=1)
        band_keys = [(band, signature[band * rows:(band + 1) * rows].tobytes())
                     for band in range(bands)]
        candidates = {j for band_key in band_keys for j in buckets.get(band_key, ())}
        if any(len(shingles & shingle_sets[j]) / len(shingles | shingle_sets[j]) >= threshold
               for j in sorted(candidates)):
            flags[i] = "near_duplicate"
            continue
        exact.add(key)
        shingle_sets[i] = shingles
        for band_key in band_keys:
            buckets[band_key].append(i)
    return flags


# ---------------------------------------------------------------------------------------------
# Pair construction
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairLimits:
    """Word ranges of the filters and the ICT keep probability."""

    ict_query_words: tuple[float, float]
    heading_query_words: tuple[float, float]
    passage_words: tuple[float, float]
    ict_keep_query_prob: float
    seed: int

    @classmethod
    def from_config(cls, config: DomainConfig) -> "PairLimits":
        return cls(config.ict_query_words, config.heading_query_words, config.passage_words,
                   config.ict_keep_query_prob, config.seed)


@dataclass(frozen=True)
class PairDraft:
    """A built pair before the group-level filters: ``query_kept`` marks ICT pairs whose
    passage still holds the query sentence (or its translation)."""

    id: str
    query_lang: str
    passage_lang: str
    query: str
    passage: str
    method: str
    doc: str
    section: str
    query_kept: bool = False


def heading_pair(block: Block, query_view: LanguageView, passage_view: LanguageView,
                 limits: PairLimits) -> tuple[PairDraft | None, str]:
    """Section title (``query_view``'s language) -> the whole block (``passage_view``'s).

    Returns the pair, or ``None`` and why not: ``not_first_block``, ``no_heading`` (no usable
    title), ``heading_too_short``/``heading_too_long``, ``passage_too_short``/``_too_long``.
    """
    if not block.first_of_section:
        return None, "not_first_block"
    title = query_view.titles.get(block.section)
    if not title:
        return None, "no_heading"
    problem = in_range(count_words(title), limits.heading_query_words)
    if problem:
        return None, f"heading_{problem}"
    passage = passage_view.block_text(block)
    problem = in_range(count_words(passage), limits.passage_words)
    if problem:
        return None, f"passage_{problem}"
    pair_id = f"{query_view.id_prefix}:{query_view.doc_id()}:b{block.number:03d}:{HEADING}"
    return PairDraft(pair_id, query_view.lang, passage_view.lang, title, passage, HEADING,
                     block.doc, block.section), "ok"


def ict_candidates(block: Block, view: LanguageView, seed: int) -> list[tuple[int, int]]:
    """The (paragraph index, sentence number) of every sentence of the block in ``view``'s
    language, in a seeded order that depends only on the positions (so languages whose
    paragraphs split alike choose the same sentence)."""
    positions = [(index, number) for index in view.block_paragraphs(block)
                 for number in range(len(view.sentences(index)))]
    return sorted(positions, key=lambda pos: (
        stable_uniform(seed, ICT, view.doc_id(), block.number, pos[0], pos[1]), pos))


def ict_passage(block: Block, query_view: LanguageView, passage_view: LanguageView,
                position: tuple[int, int], keep_query: bool) -> str:
    """The block in ``passage_view``'s language without the query sentence at ``position``
    (of ``query_view``): the sentence with the same number when that paragraph has as many
    sentences in both languages, else the whole paragraph. With ``keep_query``, the whole block.
    """
    index, number = position
    parts = []
    for i in passage_view.block_paragraphs(block):
        text = passage_view.texts[i]
        if i == index and not keep_query:
            passage_spans = passage_view.sentences(i)
            if len(passage_spans) != len(query_view.sentences(i)):
                continue
            text = remove_span(text, passage_spans[number])
        if text:
            parts.append(text)
    return " ".join(parts)


def ict_pair(block: Block, query_view: LanguageView, passage_view: LanguageView,
             limits: PairLimits) -> tuple[PairDraft | None, str]:
    """Inverse Cloze Task: a sentence of the block (``query_view``'s language) -> the rest of
    the block (``passage_view``'s), or the whole block with probability
    ``limits.ict_keep_query_prob`` (decided per pair id, so the same in every language pair).

    Sentences are tried in :func:`ict_candidates` order; the first that passes the query
    filters (word range; not ending in a colon, which introduces a listing and says nothing
    by itself) and whose block rest passes the passage word range wins; the rest of the block
    must pass even when the query is kept, so a one-sentence block never pairs a sentence with
    itself. Returns the pair, or ``None`` and why not (``ict_no_sentence``,
    ``ict_query_too_short``/``_too_long``/``_colon``, ``passage_too_short``/``_too_long``: the
    reason of the first-ranked sentence).
    """
    reasons: list[str] = []
    for position in ict_candidates(block, query_view, limits.seed):
        index, number = position
        start, end = query_view.sentences(index)[number]
        query = normalize_text(query_view.texts[index][start:end])
        problem = in_range(count_words(query), limits.ict_query_words)
        if problem is None and query.endswith((":", "\uff1a")):
            problem = "colon"
        if problem:
            reasons.append(f"ict_query_{problem}")
            continue
        rest = ict_passage(block, query_view, passage_view, position, keep_query=False)
        problem = in_range(count_words(rest), limits.passage_words)
        pair_id = (f"{query_view.id_prefix}:{query_view.doc_id()}:b{block.number:03d}:{ICT}:"
                   f"p{index:03d}.s{number}")
        keep = stable_uniform(limits.seed, "keep", pair_id) < limits.ict_keep_query_prob
        passage = ict_passage(block, query_view, passage_view, position, keep_query=True) \
            if keep else rest
        if problem is None:
            problem = in_range(count_words(passage), limits.passage_words)
        if problem:
            reasons.append(f"passage_{problem}")
            continue
        return PairDraft(pair_id, query_view.lang, passage_view.lang, query, passage, ICT,
                         block.doc, block.section, query_kept=keep), "ok"
    return None, reasons[0] if reasons else "ict_no_sentence"


def block_pair(block: Block, query_view: LanguageView, passage_view: LanguageView,
               limits: PairLimits, counts: Counter) -> PairDraft | None:
    """The one pair of a block for a (query language, passage language): the heading pair
    when the block starts a titled section, else (or when that fails) an ICT pair. Why a
    heading or an ICT pair could not be built is counted in ``counts``."""
    pair, reason = heading_pair(block, query_view, passage_view, limits)
    if pair is not None:
        return pair
    if reason != "not_first_block":
        counts[f"heading_dropped_{reason}"] += 1
    pair, reason = ict_pair(block, query_view, passage_view, limits)
    if pair is None:
        counts[f"dropped_{reason}"] += 1
    return pair


# ---------------------------------------------------------------------------------------------
# The whole build
# ---------------------------------------------------------------------------------------------

def language_pairs(config: DomainConfig) -> list[tuple[str, str]]:
    """The (query language, passage language) groups to build, monolingual ones first."""
    langs = list(config.languages)
    groups = [(lang, lang) for lang in langs]
    if config.cross_lingual:
        if config.cross_lingual_scope == "english":
            others = [lang for lang in langs if lang != "en"] if "en" in langs else []
            groups += [("en", lang) for lang in others] + [(lang, "en") for lang in others]
        else:
            groups += [(q, p) for q in langs for p in langs if q != p]
    return groups


def cap_per_group(config: DomainConfig, groups: Sequence[tuple[str, str]]
                  ) -> dict[tuple[str, str], int]:
    """Most pairs each group may keep: ``max_mono_pairs_per_language`` for a monolingual group;
    ``max_cross_pairs_per_language`` split evenly over the passage languages of a query
    language for a cross-lingual one."""
    cross_targets = Counter(q for q, p in groups if q != p)
    return {(q, p): config.max_mono_pairs_per_language if q == p
            else config.max_cross_pairs_per_language // cross_targets[q] for q, p in groups}


def _book_views(book: DebianBook, lang: str, english: Mapping[str, Chapter],
                english_blocks: Mapping[str, list[Block]], config: DomainConfig,
                mirror: str | os.PathLike, download_dir: str | os.PathLike
                ) -> tuple[dict[str, LanguageView], Counter, dict[str, Any]]:
    """One book in one language: ``doc key -> LanguageView`` (key ``<id_prefix>/<doc>``), the
    paragraph outcome counts and the alignment with English."""
    chapters = english if lang == "en" else read_chapters(lang, mirror, download_dir, book)
    paragraph_counts: Counter = Counter()
    alignment: dict[str, Any] = {"chapters_total": 0, "chapters_aligned": 0, "unaligned": {},
                                 "paragraphs_en": 0, "paragraphs_aligned": 0}
    views: dict[str, LanguageView] = {}
    for doc in sorted(chapters):
        if doc not in english:
            alignment["unaligned"][doc] = "no English chapter"
            continue
        reason = None if lang == "en" else chapter_alignment(english[doc], chapters[doc])
        alignment["chapters_total"] += 1
        if reason:
            alignment["unaligned"][doc] = reason
        else:
            alignment["chapters_aligned"] += 1
        view = language_view(chapters[doc], english[doc], reason is None, english_blocks[doc],
                             config.block_max_words, paragraph_counts, book.id_prefix)
        if reason is None:
            english_usable = [p.index for p in english[doc].paragraphs
                              if p.text and p.kind in KEPT_KINDS]
            alignment["paragraphs_en"] += len(english_usable)
            alignment["paragraphs_aligned"] += sum(i in view.texts for i in english_usable)
        views[f"{book.id_prefix}/{doc}"] = view
    return views, paragraph_counts, alignment


def _deduplicate_blocks(views: Mapping[str, LanguageView], config: DomainConfig) -> dict[str, int]:
    """Mark each view's surviving blocks (``kept_blocks``), exact and near duplicates dropped
    over all books of one language, in book and chapter order; the block outcome counts."""
    entries = [(view, block) for _, view in sorted(views.items()) for block in view.blocks]
    flags = duplicate_flags([view.block_text(block) for view, block in entries],
                            config.near_duplicate_jaccard, seed=config.seed)
    block_counts = Counter(flag or "kept" for flag in flags)
    for (view, block), flag in zip(entries, flags):
        if flag is None and view.block_paragraphs(block):
            view.kept_blocks.add(block.number)
    block_counts["empty"] = sum(1 for (view, block), flag in zip(entries, flags)
                                if flag is None and not view.block_paragraphs(block))
    block_counts["kept"] -= block_counts["empty"]
    block_counts["total"] = len(entries)
    return dict(sorted(block_counts.items()))


def _views(config: DomainConfig, mirror: str | os.PathLike, download_dir: str | os.PathLike,
           stats: dict[str, Any]) -> dict[str, dict[str, LanguageView]]:
    """Read every book in every language: ``lang -> doc key -> LanguageView``, blocks
    de-duplicated per language. A book gives a language (other than English) only when it
    has at least ``min_paragraphs`` usable paragraphs there; each (book, language) left out is
    recorded in ``stats["below_min_paragraphs"]``. A configured language no book gives is an
    error naming the counts."""
    views: dict[str, dict[str, LanguageView]] = {lang: {} for lang in config.languages}
    usable: dict[str, dict[str, int]] = {}
    for name in config.books:
        book = DEBIAN_BOOKS[name]
        english = read_chapters("en", mirror, download_dir, book)
        english_blocks = {doc: make_blocks(doc, ch.paragraphs, config.block_max_words)
                          for doc, ch in english.items()}
        for lang in track([lang for lang in config.languages if lang in book.language_dirs],
                          desc=f"debian {name}", unit="language"):
            book_views, counts, alignment = _book_views(book, lang, english, english_blocks,
                                                        config, mirror, download_dir)
            stats["paragraphs"].setdefault(name, {})[lang] = dict(sorted(counts.items()))
            stats["alignment"].setdefault(name, {})[lang] = alignment
            usable.setdefault(lang, {})[name] = counts["usable"]
            if lang != "en" and counts["usable"] < config.min_paragraphs:
                stats["below_min_paragraphs"][f"{name}:{lang}"] = counts["usable"]
                continue
            views[lang].update(book_views)
    missing = {lang: usable.get(lang, {}) for lang, docs in views.items() if not docs}
    if missing:
        raise PipelineError(
            f"params: 'domain.languages' has {sorted(missing)}, but no book of 'domain.books' "
            f"{list(config.books)} has >= {config.min_paragraphs} usable paragraphs in them "
            f"(usable per book: {missing}); expected languages with domain text, or a lower "
            f"'domain.min_paragraphs'")
    for lang in config.languages:
        stats["blocks"][lang] = _deduplicate_blocks(views[lang], config)
    stats["language_id"] = IDENTIFIER
    return views


def _group_pairs(query_lang: str, passage_lang: str,
                 views: Mapping[str, Mapping[str, LanguageView]],
                 limits: PairLimits, counts: Counter) -> list[PairDraft]:
    """One group's pairs, in chapter and block order, before the group-level filters."""
    drafts: list[PairDraft] = []
    mono = query_lang == passage_lang
    for doc in sorted(views[passage_lang]):
        passage_view = views[passage_lang][doc]
        query_view = views[query_lang].get(doc)
        if query_view is None:
            continue
        if not mono and not (query_view.aligned and passage_view.aligned):
            counts["chapters_unaligned"] += 1
            continue
        for block in passage_view.blocks:
            if block.number not in passage_view.kept_blocks:
                continue
            counts["blocks"] += 1
            pair = block_pair(block, query_view, passage_view, limits, counts)
            if pair is not None:
                drafts.append(pair)
    return drafts


def _drop_group_duplicates(drafts: list[PairDraft], counts: Counter) -> list[PairDraft]:
    """Drop pairs whose query or passage repeats an earlier pair's (exact, :func:`dedup_key`)."""
    seen_queries: set[str] = set()
    seen_passages: set[str] = set()
    kept = []
    for pair in drafts:
        query_key, passage_key = dedup_key(pair.query), dedup_key(pair.passage)
        if query_key in seen_queries:
            counts["dropped_duplicate_query"] += 1
        elif passage_key in seen_passages:
            counts["dropped_duplicate_passage"] += 1
        else:
            seen_queries.add(query_key)
            seen_passages.add(passage_key)
            kept.append(pair)
    return kept


def _drop_leaks(drafts: list[PairDraft], reasons: Mapping[str, str | None],
                counts: Counter) -> list[PairDraft]:
    """Drop the pairs whose query or passage leaks (``reasons``: text -> leak reason)."""
    kept = []
    for pair in drafts:
        query_reason, passage_reason = reasons.get(pair.query), reasons.get(pair.passage)
        if query_reason:
            counts[f"dropped_leak_query_{query_reason}"] += 1
        elif passage_reason:
            counts[f"dropped_leak_passage_{passage_reason}"] += 1
        else:
            kept.append(pair)
    return kept


def _cap(drafts: list[PairDraft], cap: int, seed: int, counts: Counter) -> list[PairDraft]:
    """At most ``cap`` pairs, a seeded sample that depends only on the ids (order kept)."""
    if len(drafts) <= cap:
        return drafts
    ranked = sorted(drafts, key=lambda p: (stable_uniform(seed, "cap", p.query_lang,
                                                          p.passage_lang, p.id), p.id))
    chosen = {p.id for p in ranked[:cap]}
    counts["dropped_cap"] += len(drafts) - cap
    return [p for p in drafts if p.id in chosen]


def pairs_table(drafts: Iterable[PairDraft]) -> pa.Table:
    """:data:`DOMAIN_PAIRS` table of ``drafts``, sorted by (query_lang, passage_lang, id)."""
    rows = sorted(drafts, key=lambda p: (p.query_lang, p.passage_lang, p.id))
    return pa.Table.from_pydict({name: [getattr(p, name) for p in rows]
                                 for name in DOMAIN_PAIRS.names}, schema=DOMAIN_PAIRS)


def build_domain_pairs(config: DomainConfig, mirror: str | os.PathLike,
                       download_dir: str | os.PathLike,
                       guard: FaqLeakageGuard | None = None) -> tuple[pa.Table, dict[str, Any]]:
    """The Debian Reference pseudo query/passage pairs of ``config`` (see the module docstring).

    Inputs: the validated config, the data mirror and download folder (``params.yaml: data``),
    and the FAQ-R leakage guard (``None`` only in tests). Output: the :data:`DOMAIN_PAIRS`
    table (sorted by query_lang, passage_lang, id) and the statistics: per language
    ``paragraphs`` (outcome counts), ``alignment`` (chapters aligned / total, English paragraphs
    of aligned chapters and how many have a translation), ``blocks`` (duplicates), and per group
    ``groups["de-en"]`` (blocks, pairs per method, every drop reason), plus totals.
    """
    stats: dict[str, Any] = {"paragraphs": {}, "alignment": {}, "blocks": {}, "groups": {},
                             "below_min_paragraphs": {}}
    views = _views(config, mirror, download_dir, stats)
    limits = PairLimits.from_config(config)
    groups = language_pairs(config)
    caps = cap_per_group(config, groups)
    built: dict[tuple[str, str], tuple[list[PairDraft], Counter]] = {}
    for query_lang, passage_lang in track(groups, desc="domain pairs", unit="group"):
        counts: Counter = Counter()
        drafts = _group_pairs(query_lang, passage_lang, views, limits, counts)
        built[(query_lang, passage_lang)] = (_drop_group_duplicates(drafts, counts), counts)
    # One leakage pass over every distinct text: scanning the FAQ answers costs the same for
    # one text as for all of them.
    texts = sorted({text for drafts, _ in built.values() for pair in drafts
                    for text in (pair.query, pair.passage)})
    reasons = dict(zip(texts, guard.leak_reasons(texts))) if guard is not None else {}
    all_pairs: list[PairDraft] = []
    for (query_lang, passage_lang), (drafts, counts) in built.items():
        drafts = _drop_leaks(drafts, reasons, counts)
        drafts = _cap(drafts, caps[(query_lang, passage_lang)], config.seed, counts)
        for pair in drafts:
            counts[pair.method] += 1
            counts["ict_query_kept_in_passage"] += pair.query_kept
        counts["pairs"] = len(drafts)
        stats["groups"][f"{query_lang}-{passage_lang}"] = dict(sorted(counts.items()))
        all_pairs.extend(drafts)
    table = pairs_table(all_pairs)
    if guard is not None:
        guard.assert_clean(table, what="domain pairs")
    stats["totals"] = totals(table)
    stats["leakage_dropped"] = sum(n for group in stats["groups"].values()
                                   for key, n in group.items() if key.startswith("dropped_leak"))
    stats["config"] = {"languages": list(config.languages), "books": list(config.books),
                       "min_paragraphs": config.min_paragraphs,
                       "cross_lingual": config.cross_lingual,
                       "cross_lingual_scope": config.cross_lingual_scope,
                       "caps": {f"{q}-{p}": n for (q, p), n in caps.items()}}
    return table, stats


def totals(table: pa.Table) -> dict[str, Any]:
    """Row counts of a :data:`DOMAIN_PAIRS` table: all, per kind, per method, per query language."""
    kinds = [pair_kind(q, p) for q, p in zip(table.column("query_lang").to_pylist(),
                                             table.column("passage_lang").to_pylist())]
    methods = table.column("method").to_pylist()
    query_langs = table.column("query_lang").to_pylist()
    return {"rows": len(table), "kind": dict(sorted(Counter(kinds).items())),
            "method": dict(sorted(Counter(methods).items())),
            "kind_method": {f"{k}:{m}": n
                            for (k, m), n in sorted(Counter(zip(kinds, methods)).items())},
            "mono_by_language": dict(sorted(Counter(q for q, k in zip(query_langs, kinds)
                                                    if k == MONO).items())),
            "cross_by_query_language": dict(sorted(Counter(q for q, k in zip(query_langs, kinds)
                                                           if k == CROSS).items()))}


def domain_shard_table(pairs: pa.Table) -> pa.Table:
    """:data:`SHARD` rows of a :data:`DOMAIN_PAIRS` table: ``pair_id`` = ``id``, source
    ``domain``, kind ``mono``/``cross``; sorted by (query_lang, passage_lang, pair_id).

    Raises :class:`PipelineError` if an id repeats within a (query_lang, passage_lang) group.
    """
    keys = list(zip(pairs.column("query_lang").to_pylist(),
                    pairs.column("passage_lang").to_pylist(), pairs.column("id").to_pylist()))
    repeated = [key for key, n in Counter(keys).items() if n > 1]
    if repeated:
        raise PipelineError(f"domain pairs: column 'id' repeats within a language pair "
                            f"{len(repeated)} times (e.g. {repeated[:3]}), expected unique ids "
                            f"per (query_lang, passage_lang)")
    order = sorted(range(len(keys)), key=keys.__getitem__)
    taken = pairs.take(pa.array(order, pa.int64()))
    return pa.Table.from_pydict({
        "pair_id": taken.column("id"), "query_lang": taken.column("query_lang"),
        "passage_lang": taken.column("passage_lang"), "query": taken.column("query"),
        "passage": taken.column("passage"), "source": [SOURCE] * len(taken),
        "kind": [pair_kind(q, p) for q, p in zip(taken.column("query_lang").to_pylist(),
                                                 taken.column("passage_lang").to_pylist())],
    }, schema=SHARD)
