"""NTREX-128 as N-way parallel sentences, and every ordered language pair of them as shard rows.

NTREX-128 (Federmann et al., 2022; github.com/MicrosoftTranslator/NTREX, CC BY-SA 4.0, so
shards made from it are CC BY-SA too) is the English WMT19 news test set
(``newstest2019-src.eng.txt``: 1,997 sentences of 123 documents) translated by professionals
into 128 languages, one ``newstest2019-ref.<code>.txt`` per language, every file line-aligned
with the source and with ``DOCUMENT_IDS.tsv``: line *i* of every file is one sentence.

* :func:`read_ntrex`: the sentences of some languages as one table (``sentence_id``
  ``ntrex:<0-based line, 4 digits>``, ``doc_id``, ``lang``, ``text`` via
  :func:`text.normalize_text`), after checking that every file has one non-empty line per
  document id. :func:`read_lines` reads one file (also a reference variety, ``por-BR``).
* :func:`select_documents`: a seeded subset of whole documents (``parallel.max_sentences``).
* :func:`parallel_pairs`: for every ordered pair X != Y of the languages (holdout languages
  left out), one :data:`schemas.SHARD` row per sentence: query in X, passage in Y, source
  ``parallel``, kind ``cross``. ``pair_id`` is the sentence id in every language pair (as the
  SQuAD id in the QA shards), so the no-duplicates batch filler never puts two pairs of one
  sentence into one batch.

Our two-letter codes map to NTREX's file codes in :data:`LANGUAGE_FILES` (``en`` is the
source file, ``pt`` is European Portuguese ``por``). :data:`REFERENCE_VARIETIES` are second
references of a language (Brazilian Portuguese ``por-BR``), for MT scoring only
(:mod:`mt_quality`), never a training language.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .config import distinct, param, read_section
from .errors import PipelineError
from .schemas import SHARD
from .sources import locate
from .text import normalize_text

FOLDER = "ntrex-128"
DOCUMENT_IDS = f"{FOLDER}/DOCUMENT_IDS.tsv"
SOURCE_CODE = "eng"
SOURCE = "parallel"
#: ``shards.pair_kind`` of every row (X != Y). Not imported from :mod:`shards`, so that
#: :mod:`mt_quality`, which reads NTREX through this module, does not depend on the shard code.
KIND = "cross"

#: Our language code -> NTREX file code (``newstest2019-ref.<code>.txt``; ``eng`` is the source).
LANGUAGE_FILES: dict[str, str] = {
    "ar": "arb", "de": "deu", "el": "ell", "en": SOURCE_CODE, "es": "spa", "fr": "fra",
    "hi": "hin", "id": "ind", "it": "ita", "ja": "jpn", "ko": "kor", "nl": "nld", "pt": "por",
    "ru": "rus", "th": "tha", "tr": "tur", "vi": "vie", "zh": "zho-CN",
}
#: Extra references of one of our languages (NTREX file code -> our code): MT scoring only.
REFERENCE_VARIETIES: dict[str, str] = {"por-BR": "pt"}
#: The XQuAD-R languages: the default training languages.
XQUAD_R_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
#: The paper's zero-shot languages (``parallel.holdout_languages: [el, vi]``).
PAPER_HOLDOUT_LANGUAGES = ("el", "vi")

TABLE_SCHEMA = pa.schema([pa.field(name, pa.string(), nullable=False)
                          for name in ("sentence_id", "doc_id", "lang", "text")])


def ntrex_file(code: str) -> str:
    """The mirror path of the NTREX file with file code ``code`` (``eng``: the source)."""
    if code == SOURCE_CODE:
        return f"{FOLDER}/newstest2019-src.eng.txt"
    return f"{FOLDER}/newstest2019-ref.{code}.txt"


def sentence_id(line: int) -> str:
    """``ntrex:0042`` for 0-based line 42 (the same id in every language)."""
    return f"ntrex:{line:04d}"


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------

def _holdout(values: list[Any], where: str) -> list[Any]:
    unknown = [v for v in values if v not in LANGUAGE_FILES]
    if unknown:
        raise PipelineError(f"{where} is {values!r} (unknown {unknown}), expected distinct "
                            f"values from {list(LANGUAGE_FILES)} (or [])")
    distinct(values, where)
    return values


@dataclass(frozen=True)
class ParallelConfig:
    """``params.yaml: parallel``: the NTREX-128 parallel-sentence shards."""

    languages: tuple[str, ...] = param(
        XQUAD_R_LANGUAGES, help="NTREX-128 languages to pair (every ordered X != Y)",
        choices=list(LANGUAGE_FILES))
    holdout_languages: tuple[str, ...] = param(
        (), help="languages of 'languages' left out of every pair (zero-shot; [el, vi] as in "
                 "the paper)", check=_holdout)
    max_sentences: int = param(
        0, help="0 = all 1,997 sentences; N > 0 = a seeded subset of whole documents with at "
                "least N sentences", low=0)
    seed: int = param(13, help="seed of the document subset")

    @property
    def training_languages(self) -> tuple[str, ...]:
        """``languages`` without ``holdout_languages``, sorted."""
        return tuple(sorted(set(self.languages) - set(self.holdout_languages)))


def read_parallel_config(params: Mapping[str, Any],
                         params_path: str = "params.yaml") -> ParallelConfig:
    """The ``parallel`` section as a :class:`ParallelConfig`; :class:`PipelineError` naming
    ``params_path`` and the key for a bad value, a holdout language that is not among
    ``parallel.languages``, or fewer than two languages left to pair."""
    config = read_section(ParallelConfig, params, "parallel", params_path, unknown_keys=False)
    outside = [lang for lang in config.holdout_languages if lang not in config.languages]
    if outside:
        raise PipelineError(f"{params_path}: 'parallel.holdout_languages' is "
                            f"{list(config.holdout_languages)!r} ({outside} not in "
                            f"'parallel.languages'), expected a subset of "
                            f"{list(config.languages)}")
    if len(config.training_languages) < 2:
        raise PipelineError(f"{params_path}: 'parallel.languages' minus "
                            f"'parallel.holdout_languages' is {list(config.training_languages)}, "
                            f"expected at least two languages to pair")
    return config


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

def _raw_lines(relpath: str, mirror: str | os.PathLike,
               download_dir: str | os.PathLike) -> tuple[str, list[str]]:
    """The lines of a verified NTREX file (CRLF or LF; a final newline ends the last line)."""
    path = locate(relpath, mirror, download_dir)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: not UTF-8 text ({exc})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return str(path), [line.rstrip("\r") for line in lines]


def document_ids(mirror: str | os.PathLike, download_dir: str | os.PathLike) -> list[str]:
    """The document id of every line (``DOCUMENT_IDS.tsv``: one id a line, first field)."""
    path, lines = _raw_lines(DOCUMENT_IDS, mirror, download_dir)
    ids = [line.split("\t", 1)[0].strip() for line in lines]
    for number, doc in enumerate(ids, 1):
        if not doc:
            raise PipelineError(f"{path}: line {number} is empty, expected a document id")
    return ids


def read_lines(code: str, mirror: str | os.PathLike, download_dir: str | os.PathLike,
               *, expected: int | None = None) -> list[str]:
    """The normalised sentences of the NTREX file with file code ``code`` (``eng``, ``por``,
    ``por-BR``, ...), checked: exactly ``expected`` lines (default: as many as
    ``DOCUMENT_IDS.tsv``) and none empty; :class:`PipelineError` naming the file otherwise."""
    if expected is None:
        expected = len(document_ids(mirror, download_dir))
    path, lines = _raw_lines(ntrex_file(code), mirror, download_dir)
    if len(lines) != expected:
        raise PipelineError(f"{path}: {len(lines)} lines, expected {expected} (one per line of "
                            f"{DOCUMENT_IDS}: NTREX files are line-aligned)")
    texts = [normalize_text(line) for line in lines]
    for number, text in enumerate(texts, 1):
        if not text:
            raise PipelineError(f"{path}: line {number} ({sentence_id(number - 1)}) is empty, "
                                f"expected the translation of line {number} of "
                                f"{ntrex_file(SOURCE_CODE)}")
    return texts


def check_languages(languages: Iterable[str]) -> list[str]:
    """``languages`` as a list; :class:`PipelineError` naming ``parallel.languages`` and the
    choices for a code NTREX does not have here (or an empty list, or a repeated code)."""
    languages = list(languages)
    unknown = [lang for lang in languages if lang not in LANGUAGE_FILES]
    if unknown or not languages:
        problem = f"unknown {unknown}" if unknown else "empty"
        raise PipelineError(f"'parallel.languages' is {languages!r} ({problem}), expected "
                            f"distinct values from {list(LANGUAGE_FILES)}")
    distinct(languages, "'parallel.languages'")
    return languages


def read_ntrex(languages: Sequence[str], mirror: str | os.PathLike,
               download_dir: str | os.PathLike) -> pa.Table:
    """The NTREX-128 sentences of ``languages`` (our codes) as one table (:data:`TABLE_SCHEMA`):
    ``sentence_id`` ``ntrex:<0-based line>``, ``doc_id``, ``lang``, normalised ``text``; rows by
    language (in the order given), then line. Every file is checked against
    ``DOCUMENT_IDS.tsv`` (:func:`read_lines`)."""
    languages = check_languages(languages)
    docs = document_ids(mirror, download_dir)
    ids = pa.array([sentence_id(i) for i in range(len(docs))], pa.string())
    doc_array = pa.array(docs, pa.string())
    parts = []
    for lang in languages:
        texts = read_lines(LANGUAGE_FILES[lang], mirror, download_dir, expected=len(docs))
        parts.append(pa.Table.from_arrays(
            [ids, doc_array, pa.repeat(pa.scalar(lang, pa.string()), len(docs)),
             pa.array(texts, pa.string())], schema=TABLE_SCHEMA))
    return pa.concat_tables(parts)


def _document_rank(seed: int, doc: str) -> bytes:
    return hashlib.blake2b(f"{seed}\x1fntrex\x1f{doc}".encode("utf-8"), digest_size=8).digest()


def select_documents(table: pa.Table, max_sentences: int, seed: int) -> pa.Table:
    """The rows of whole documents, in a seeded order, until at least ``max_sentences``
    sentences are in (the last document is kept whole, so a few more may come); ``0`` or more
    than there are: ``table`` itself. The choice depends only on ``seed`` and the document
    ids; the rows keep their order."""
    if max_sentences <= 0:
        return table
    sentences: dict[str, set[str]] = {}
    for doc, sid in zip(table.column("doc_id").to_pylist(), table.column("sentence_id").to_pylist()):
        sentences.setdefault(doc, set()).add(sid)
    if sum(map(len, sentences.values())) <= max_sentences:
        return table
    chosen, count = [], 0
    for doc in sorted(sentences, key=lambda d: (_document_rank(seed, d), d)):
        if count >= max_sentences:
            break
        chosen.append(doc)
        count += len(sentences[doc])
    return table.filter(pc.is_in(table.column("doc_id"), value_set=pa.array(chosen, pa.string())))


# ---------------------------------------------------------------------------------------------
# Pairs
# ---------------------------------------------------------------------------------------------

def _language_rows(table: pa.Table, lang: str) -> tuple[pa.Array, pa.Array]:
    rows = table.filter(pc.equal(table.column("lang"), lang)).sort_by("sentence_id")
    if len(rows) == 0:
        raise PipelineError(f"NTREX table: no sentences in '{lang}', expected it among "
                            f"{sorted(set(table.column('lang').to_pylist()))}")
    ids = rows.column("sentence_id").combine_chunks()
    if len(pc.unique(ids)) != len(ids):
        raise PipelineError(f"NTREX table: repeated sentence ids in '{lang}', expected one row "
                            f"per sentence and language")
    return ids, rows.column("text").combine_chunks()


def parallel_pairs(table: pa.Table, languages: Sequence[str],
                   holdout_languages: Sequence[str] = ()) -> pa.Table:
    """Every ordered pair X != Y of ``languages`` minus ``holdout_languages``, as a
    :data:`schemas.SHARD` table: one row per sentence that both X and Y have (``pair_id`` = the
    sentence id, query = its text in X, passage = its text in Y, source ``parallel``, kind
    ``cross``), sorted by (query_lang, passage_lang, pair_id)."""
    langs = sorted(set(check_languages(languages)) - set(holdout_languages))
    if len(langs) < 2:
        raise PipelineError(f"'parallel.languages' minus 'parallel.holdout_languages' is "
                            f"{langs}, expected at least two languages to pair")
    views = {lang: _language_rows(table, lang) for lang in langs}
    parts = []
    for query_lang in langs:
        query_ids, queries = views[query_lang]
        for passage_lang in langs:
            if passage_lang == query_lang:
                continue
            passage_ids, passages = views[passage_lang]
            index = pc.index_in(query_ids, value_set=passage_ids)
            ids, texts = query_ids, queries
            if index.null_count:
                keep = pc.is_valid(index)
                ids, texts, index = ids.filter(keep), texts.filter(keep), index.filter(keep)
            n = len(ids)
            parts.append(pa.Table.from_arrays(
                [ids, pa.repeat(pa.scalar(query_lang, pa.string()), n),
                 pa.repeat(pa.scalar(passage_lang, pa.string()), n), texts,
                 passages.take(index), pa.repeat(pa.scalar(SOURCE, pa.string()), n),
                 pa.repeat(pa.scalar(KIND, pa.string()), n)], schema=SHARD))
    return pa.concat_tables(parts)
