"""XQuAD-R and MLQA-R (LAReQA) -> evaluation questions and candidate sentences.

The LAReQA files are SQuAD-format JSON whose paragraphs carry the dataset's own sentence
segmentation: ``sentences`` (the candidate texts) and ``sentence_breaks`` (half-open character
spans ``[start, end)`` into ``context``; ``context[start:end] == sentences[i]``). Following the
LAReQA paper (Roy et al. 2020, section 3.1), every sentence of every paragraph is a candidate
(its ``context`` is the paragraph), and a question's gold is the sentence whose span contains
its first answer's ``answer_start``. Parallel questions share their ``id`` across languages; it
becomes ``group_id``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa

from . import sources
from .config import invalid, missing, param, read_section
from .debian_faq import FAQ_FOLDERS, INSTALL_GUIDE_FOLDERS
from .errors import PipelineError
from .io import read_json
from .schemas import EVAL_CANDIDATES, EVAL_QUESTIONS

log = logging.getLogger(__name__)

#: Languages of each LAReQA set (raw files ``<dataset>/<lang>.json``).
LAREQA_LANGUAGES: dict[str, tuple[str, ...]] = {
    "xquad-r": ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"),
    "mlqa-r": ("ar", "de", "en", "es", "hi", "vi", "zh"),
}

#: More sentences than this share whose text differs from ``context[start:end]`` means the
#: file does not follow the half-open span convention (or is corrupt). The released data has
#: 2 such sentences in 13,014 (xquad-r/tr.json, where the context has mojibake the sentence
#: text does not).
MAX_BREAK_MISMATCH_SHARE = 0.01

#: The datasets the prepare_eval stage writes, and the ``eval_data`` key of each one's languages.
EVAL_DATASETS = ("xquad-r", "mlqa-r", "debian-faq-r", "debian-install-r")
LANGUAGE_PARAMS = {"xquad-r": "xquad_r_languages", "mlqa-r": "mlqa_r_languages",
                   "debian-faq-r": "faq_languages", "debian-install-r": "install_languages"}
#: The ``eval_data`` keys the Debian sets need (Install-R is built by FAQ-R's rules: the same
#: passage length and copied-share limit).
FAQ_PARAMS = ("faq_max_passage_words", "faq_max_copied_share", "faq_skip_chapters")
DEBIAN_SETS = ("debian-faq-r", "debian-install-r")


def _chapter_names(values: list[Any], where: str) -> list[Any]:
    if not all(isinstance(c, str) for c in values):
        raise invalid(where, values, "a list of chapter names (file stems, e.g. faqinfo)")
    return values


@dataclass(frozen=True)
class EvalDataConfig:
    """``params.yaml: eval_data``: the evaluation sets prepare_eval builds. A dataset's
    languages key (:data:`LANGUAGE_PARAMS`) and, for ``debian-faq-r``, :data:`FAQ_PARAMS` are
    required when the dataset is listed."""

    datasets: tuple[str, ...] = param(help="evaluation sets to build", choices=EVAL_DATASETS)
    xquad_r_languages: tuple[str, ...] | None = param(
        None, help="XQuAD-R languages", choices=LAREQA_LANGUAGES["xquad-r"])
    mlqa_r_languages: tuple[str, ...] | None = param(
        None, help="MLQA-R languages", choices=LAREQA_LANGUAGES["mlqa-r"])
    faq_languages: tuple[str, ...] | None = param(
        None, help="Debian FAQ-R languages (zh = Debian's zh-cn)", choices=tuple(FAQ_FOLDERS))
    install_languages: tuple[str, ...] | None = param(
        None, help="Debian Install-R languages (Installation Guide; zh = its zh_CN)",
        choices=tuple(INSTALL_GUIDE_FOLDERS))
    faq_max_passage_words: float | None = param(
        None, help="Debian FAQ answers are split into passages of at most this many words (a "
        "Han/kana character counts 1/2)", low=10, high=10_000)
    faq_max_copied_share: float | None = param(
        None, help="a translated section is dropped when more than this share of its answer "
        "prose is verbatim English", low=0, high=1)
    faq_skip_chapters: tuple[str, ...] | None = param(
        None, help="Debian FAQ chapters (file stems) that hold no FAQ questions",
        check=_chapter_names)

    @classmethod
    def from_params(cls, params: Mapping[str, Any],
                    params_path: str = "params.yaml") -> "EvalDataConfig":
        """Read the ``eval_data`` section, with the keys the listed datasets need."""
        config = read_section(cls, params, "eval_data", params_path)
        needed = [LANGUAGE_PARAMS[dataset] for dataset in config.datasets]
        if set(DEBIAN_SETS) & set(config.datasets):
            needed += FAQ_PARAMS
        for key in needed:
            if getattr(config, key) is None:
                raise missing(params_path, f"eval_data.{key}")
        return config

    def languages(self, dataset: str) -> list[str]:
        """The languages of ``dataset`` (one of :attr:`datasets`)."""
        return list(getattr(self, LANGUAGE_PARAMS[dataset]))


@dataclass
class LareqaStats:
    """Counts for one language file of a LAReQA set."""

    questions: int = 0
    candidates: int = 0
    paragraphs: int = 0
    duplicate_paragraphs: int = 0    # same context text seen before: its sentences reused
    break_mismatches: int = 0        # sentences[i] != context[start:end]
    gold_in_gap: int = 0             # answer_start between two sentences: next sentence is gold
    gold_not_found: int = 0          # answer_start after the last sentence: question dropped
    duplicate_questions: int = 0     # same id, text and gold as an earlier question: skipped
    answer_crosses_sentence: int = 0  # answer text runs past the end of its gold sentence

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class LareqaLanguage:
    """One language of a LAReQA set: question rows, candidate rows (dicts keyed by the
    EVAL_QUESTIONS / EVAL_CANDIDATES column names) and the counts."""

    lang: str
    questions: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    stats: LareqaStats


def gold_sentence_index(breaks: list[tuple[int, int]], answer_start: int) -> int | None:
    """Index of the sentence span ``[start, end)`` that contains ``answer_start``.

    ``breaks`` are sorted, non-overlapping spans. A position in the gap before a sentence
    (whitespace between sentences, or before the first) belongs to that following sentence,
    as in :func:`hybrid_retrieval.text.sentence_containing`; a position at or after the end of
    the last sentence belongs to none (``None``).
    """
    for index, (_, end) in enumerate(breaks):
        if answer_start < end:
            return index
    return None


def _expect(value: Any, kind: type | tuple[type, ...], path: Path, field: str,
            expected: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        raise PipelineError(f"{path}: field '{field}' is {shown}, expected {expected}")
    return value


def _field(obj: dict[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in obj:
        raise PipelineError(f"{path}: field '{where}.{key}' is missing")
    return obj[key]


def _breaks(paragraph: dict[str, Any], path: Path, where: str) -> tuple[list[str],
                                                                      list[tuple[int, int]]]:
    """Validated ``sentences`` and ``sentence_breaks`` of one paragraph."""
    context = paragraph["context"]
    sentences = _expect(_field(paragraph, "sentences", path, where), list, path,
                        f"{where}.sentences", "a list of sentence strings")
    raw_breaks = _expect(_field(paragraph, "sentence_breaks", path, where), list, path,
                         f"{where}.sentence_breaks", "a list of [start, end] pairs")
    if len(sentences) != len(raw_breaks) or not sentences:
        raise PipelineError(
            f"{path}: field '{where}.sentence_breaks' has {len(raw_breaks)} spans and "
            f"'{where}.sentences' {len(sentences)} sentences, expected the same number (>0)")
    breaks: list[tuple[int, int]] = []
    previous_end = 0
    for i, (sentence, span) in enumerate(zip(sentences, raw_breaks)):
        _expect(sentence, str, path, f"{where}.sentences[{i}]", "a string")
        ok = (isinstance(span, list) and len(span) == 2
              and all(isinstance(x, int) and not isinstance(x, bool) for x in span)
              and previous_end <= span[0] <= span[1] <= len(context))
        if not ok:
            raise PipelineError(
                f"{path}: field '{where}.sentence_breaks[{i}]' is {span!r}, expected [start, end] "
                f"with {previous_end} <= start <= end <= {len(context)} (sorted, inside context)")
        breaks.append((span[0], span[1]))
        previous_end = span[1]
    return sentences, breaks


def read_lareqa_file(path: str | os.PathLike, lang: str) -> LareqaLanguage:
    """Read one LAReQA language file into question and candidate rows.

    ``qid`` is ``"<lang>:<id>"``, ``group_id`` the dataset ``id`` (shared by parallel questions),
    ``cid`` ``"<lang>:p<paragraph>:s<sentence>"`` (paragraph number in file order). Every
    sentence is its own candidate, duplicates included; a paragraph whose context repeats an
    earlier one adds no candidates (its questions point to the first copy). A question whose
    ``answer_start`` lies after the last sentence gets no gold and is dropped (counted).
    Raises :class:`PipelineError` naming the file and field for malformed input, and when more
    than ``MAX_BREAK_MISMATCH_SHARE`` of the sentences disagree with their spans.
    """
    path = Path(path)
    document = read_json(path)
    _expect(document, dict, path, "(top level)", "a SQuAD-format object with 'data'")
    articles = _expect(_field(document, "data", path, "(top level)"), list, path, "data",
                       "a list of articles")
    reader = _LareqaFileReader(path, lang)
    for a, article in enumerate(articles):
        where_article = f"data[{a}]"
        _expect(article, dict, path, where_article, "an article object")
        paragraphs = _expect(_field(article, "paragraphs", path, where_article), list, path,
                             f"{where_article}.paragraphs", "a list of paragraphs")
        for p, paragraph in enumerate(paragraphs):
            reader.paragraph(paragraph, f"{where_article}.paragraphs[{p}]")
    stats = reader.stats
    stats.questions = len(reader.questions)
    stats.candidates = len(reader.candidates)
    if stats.candidates and stats.break_mismatches > MAX_BREAK_MISMATCH_SHARE * stats.candidates:
        raise PipelineError(
            f"{path}: field 'sentence_breaks' disagrees with 'sentences' for "
            f"{stats.break_mismatches} of {stats.candidates} sentences, expected "
            f"context[start:end] == sentence for all but {MAX_BREAK_MISMATCH_SHARE:.0%}")
    return LareqaLanguage(lang, reader.questions, reader.candidates, stats)


class _LareqaFileReader:
    """The rows and counts of one LAReQA file, built paragraph by paragraph."""

    def __init__(self, path: Path, lang: str) -> None:
        self.path, self.lang = path, lang
        self.stats = LareqaStats()
        self.questions: list[dict[str, Any]] = []
        self.candidates: list[dict[str, Any]] = []
        self.cids_by_context: dict[str, list[str]] = {}
        self.breaks_by_context: dict[str, list[tuple[int, int]]] = {}
        self.seen_questions: dict[str, tuple[str, int | None, str]] = {}

    def paragraph(self, paragraph: Any, where: str) -> None:
        """A paragraph's candidates (unless its context was seen) and its questions."""
        path, stats = self.path, self.stats
        _expect(paragraph, dict, path, where, "a paragraph object")
        context = _expect(_field(paragraph, "context", path, where), str, path,
                          f"{where}.context", "a string")
        sentences, breaks = _breaks(paragraph, path, where)
        if context in self.cids_by_context:
            stats.duplicate_paragraphs += 1
            if breaks != self.breaks_by_context[context]:
                raise PipelineError(f"{path}: field '{where}.sentence_breaks' differs from an "
                                    f"earlier copy of the same paragraph, expected the same")
        else:
            number = stats.paragraphs
            stats.paragraphs += 1
            cids = [f"{self.lang}:p{number:04d}:s{i:02d}" for i in range(len(sentences))]
            for cid, sentence, (start, end) in zip(cids, sentences, breaks):
                if context[start:end] != sentence:
                    stats.break_mismatches += 1
                self.candidates.append({"cid": cid, "lang": self.lang, "text": sentence,
                                        "context": context})
            self.cids_by_context[context] = cids
            self.breaks_by_context[context] = breaks
        qas = _expect(_field(paragraph, "qas", path, where), list, path, f"{where}.qas",
                      "a list of questions")
        for q, qa in enumerate(qas):
            self.question(qa, f"{where}.qas[{q}]", context, breaks)

    def question(self, qa: Any, where_q: str, context: str,
                 breaks: list[tuple[int, int]]) -> None:
        """One question row with its gold sentence, or a counted reason it has none."""
        path, stats = self.path, self.stats
        _expect(qa, dict, path, where_q, "a question object")
        qid = _expect(_field(qa, "id", path, where_q), str, path, f"{where_q}.id", "a string")
        text = _expect(_field(qa, "question", path, where_q), str, path,
                       f"{where_q}.question", "a string")
        answers = _expect(_field(qa, "answers", path, where_q), list, path,
                          f"{where_q}.answers", "a list of answers")
        if not answers or not isinstance(answers[0], dict):
            raise PipelineError(f"{path}: field '{where_q}.answers' is {answers!r}, "
                                f"expected at least one answer object")
        start = _expect(_field(answers[0], "answer_start", path, f"{where_q}.answers[0]"),
                        int, path, f"{where_q}.answers[0].answer_start",
                        f"an integer in [0, {len(context)})")
        if not 0 <= start < len(context):
            raise PipelineError(
                f"{path}: field '{where_q}.answers[0].answer_start' is {start}, "
                f"expected an integer in [0, {len(context)})")
        gold = gold_sentence_index(breaks, start)
        key = (text, gold, context)
        if qid in self.seen_questions:
            if self.seen_questions[qid] == key:  # a repeated paragraph's repeated question
                stats.duplicate_questions += 1
                return
            raise PipelineError(f"{path}: field '{where_q}.id' is {qid!r}, expected ids "
                                f"unique within the file (seen before with other text)")
        self.seen_questions[qid] = key
        if gold is None:
            stats.gold_not_found += 1
            return
        if start < breaks[gold][0]:
            stats.gold_in_gap += 1
        answer_text = answers[0].get("text", "")
        if isinstance(answer_text, str) and start + len(answer_text) > breaks[gold][1]:
            stats.answer_crosses_sentence += 1
        self.questions.append({"qid": f"{self.lang}:{qid}", "group_id": qid, "lang": self.lang,
                               "text": text, "gold_cids": [self.cids_by_context[context][gold]]})


def check_languages(dataset: str, langs: list[str], param: str) -> None:
    """Raise :class:`PipelineError` naming ``param`` if ``dataset`` or a language is unknown."""
    if dataset not in LAREQA_LANGUAGES:
        raise PipelineError(f"params.yaml: '{param}' names dataset {dataset!r}, expected one of "
                            f"{sorted(LAREQA_LANGUAGES)}")
    allowed = LAREQA_LANGUAGES[dataset]
    unknown = [lang for lang in langs if lang not in allowed]
    if unknown or not langs:
        raise PipelineError(f"params.yaml: '{param}' has {unknown or 'no languages'}, expected "
                            f"a non-empty list drawn from {list(allowed)}")


def read_lareqa(dataset: str, langs: list[str], mirror: str | os.PathLike,
                download_dir: str | os.PathLike, *,
                param: str = "eval_data.languages") -> list[LareqaLanguage]:
    """Read ``<dataset>/<lang>.json`` for each language (verified via :func:`sources.locate`).

    ``param`` names the setting the languages came from, for the error on an unknown one.
    """
    check_languages(dataset, langs, param)
    read = []
    for lang in langs:
        path = sources.locate(f"{dataset}/{lang}.json", mirror, download_dir)
        read.append(read_lareqa_file(path, lang))
        log.info("%s %s: %s", dataset, lang, read[-1].stats.as_dict())
    return read


def to_tables(languages: Sequence[Any]) -> tuple[pa.Table, pa.Table]:
    """Concatenate per-language rows into (questions, candidates) tables with the eval schemas.

    ``languages`` are :class:`LareqaLanguage` or any objects with ``questions`` and
    ``candidates`` row lists (the Debian FAQ's :class:`~hybrid_retrieval.debian_faq.FaqLanguage`).
    """
    questions = [row for part in languages for row in part.questions]
    candidates = [row for part in languages for row in part.candidates]
    return (pa.Table.from_pylist(questions, schema=EVAL_QUESTIONS),
            pa.Table.from_pylist(candidates, schema=EVAL_CANDIDATES))
