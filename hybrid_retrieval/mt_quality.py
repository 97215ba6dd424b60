"""Machine-translation quality on human translations: chrF++ and BLEU with sacrebleu.

Test sets (English side translated, scored against the human translation; and the human
translation translated back to English where the engine has that direction):

* ``xquad-r``: XQuAD-R's English questions and sentences vs their professional translations
  (ar de el es hi ru th tr vi zh). Questions pair by id; sentences pair by position inside
  paragraphs (identified by their question ids) whose sentence counts are equal. Two rows:
  ``xquad-r-questions`` and ``xquad-r-sentences``. XQuAD-R is used here *only* as an MT test
  set; it is the retrieval evaluation set too, never training data.
* ``debian-faq``: Debian FAQ section titles, paired by anchor id
  (:func:`hybrid_retrieval.debian_faq.read_faq_language`, numbered ``<h2>`` sections), titles
  left in English dropped.
* ``debian-reference``: Debian Reference paragraphs
  (:func:`hybrid_retrieval.debian_reference.aligned_paragraphs`).
* ``ntrex``: NTREX-128 (:mod:`hybrid_retrieval.ntrex`), the English WMT19 news sentences vs
  their human translation, paired by line: one row ``ntrex-<NTREX code>`` per reference
  (``ntrex-deu``, ...). Portuguese has two references scored as two rows on the same sample:
  European ``ntrex-por`` (also the pt->en row) and Brazilian ``ntrex-por-BR`` (en->pt only;
  it reuses the en->pt translations, and their ``seconds``, of ``ntrex-por``).

Each set is capped at ``max_pairs`` pairs sampled with a fixed seed. Long texts are translated
sentence by sentence (:func:`hybrid_retrieval.translation.translate_texts`). Where the reverse
direction exists, the en->X row also has the round-trip chrF++ (en -> X -> en vs the English).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .config import invalid, param
from .errors import PipelineError
from .sources import list_files, locate
from .text import normalize_text, same_text_key
from .translation import DecodingOptions, Engine, available_directions, load_engine, \
    translate_texts

log = logging.getLogger(__name__)

TEST_SETS = ("xquad-r", "debian-faq", "debian-reference", "ntrex")

#: Languages whose text has no spaces between words: BLEU on characters unless a proper
#: word segmenter is available (``zh`` has sacrebleu's own; ``ja``/``ko`` need MeCab).
CHARACTER_BLEU_LANGUAGES = frozenset({"ja", "ko", "th", "lo", "km", "my"})


def _test_sets(values: list[Any], where: str) -> list[Any]:
    if not values or any(name not in TEST_SETS for name in values):
        raise invalid(where, values, f"a non-empty list of {', '.join(TEST_SETS)}")
    return values


@dataclass(frozen=True)
class MtQualityConfig:
    """``params.yaml: mt_quality``: which test sets :func:`evaluate` scores, and how many pairs."""

    test_sets: tuple[str, ...] = param(help=f"test sets, each for the languages it has: "
                                            f"{', '.join(TEST_SETS)}", check=_test_sets)
    max_pairs: int = param(help="pairs per test set and direction, a seeded sample (0 = all)",
                           low=0)
    seed: int = param(help="seed of the sample")


@dataclass(frozen=True)
class ParallelSet:
    """A test set: English ``sources`` and their human translations into ``lang``.

    ``sample_key`` (default: ``name``) seeds :meth:`sample`: sets that share it and their
    sources draw the same pairs (two references of one source text). ``reverse``: the
    references are also translated back to English for a ``<lang>-en`` row (off for a second
    reference of the same sources).
    """

    name: str
    lang: str
    sources: list[str]
    references: list[str]
    sample_key: str = ""
    reverse: bool = True

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.references):
            raise ValueError(f"{self.name}: {len(self.sources)} sources but "
                             f"{len(self.references)} references")

    def sample(self, max_pairs: int, seed: int) -> "ParallelSet":
        """At most ``max_pairs`` pairs (0 = all), drawn with ``seed``, in original order."""
        if not max_pairs or len(self.sources) <= max_pairs:
            return self
        keep = sorted(random.Random(f"{seed}/{self.sample_key or self.name}/{self.lang}").sample(
            range(len(self.sources)), max_pairs))
        return dataclasses.replace(self, sources=[self.sources[i] for i in keep],
                                   references=[self.references[i] for i in keep])


# --------------------------------------------------------------------------------------------
# Test sets
# --------------------------------------------------------------------------------------------

def _xquad(path: Path) -> tuple[dict[str, str], dict[tuple[str, ...], list[str]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (KeyError, json.JSONDecodeError) as exc:
        raise PipelineError(f"{path}: not a SQuAD-format JSON file ({exc})") from None
    questions: dict[str, str] = {}
    paragraphs: dict[tuple[str, ...], list[str]] = {}
    for article in data:
        for paragraph in article["paragraphs"]:
            ids = tuple(sorted(qa["id"] for qa in paragraph["qas"]))
            paragraphs[ids] = [normalize_text(s) for s in paragraph["sentences"]]
            questions.update((qa["id"], normalize_text(qa["question"]))
                             for qa in paragraph["qas"])
    return questions, paragraphs


def xquad_sets(mirror: str | os.PathLike, download_dir: str | os.PathLike,
               lang: str) -> list[ParallelSet]:
    """``xquad-r-questions`` and ``xquad-r-sentences`` for ``lang`` (empty if not in XQuAD-R)."""
    if f"xquad-r/{lang}.json" not in list_files("xquad-r/", ".json") or lang == "en":
        return []
    en_questions, en_paragraphs = _xquad(locate("xquad-r/en.json", mirror, download_dir))
    questions, paragraphs = _xquad(locate(f"xquad-r/{lang}.json", mirror, download_dir))
    qids = [q for q in en_questions if q in questions]
    sentence_pairs = [(s, t) for key, en in en_paragraphs.items()
                      if len(en) == len(paragraphs.get(key, ()))
                      for s, t in zip(en, paragraphs[key]) if s and t]
    return [ParallelSet("xquad-r-questions", lang, [en_questions[q] for q in qids],
                        [questions[q] for q in qids]),
            ParallelSet("xquad-r-sentences", lang, [s for s, _ in sentence_pairs],
                        [t for _, t in sentence_pairs])]


def faq_title_set(mirror: str | os.PathLike, download_dir: str | os.PathLike,
                  lang: str) -> list[ParallelSet]:
    """``debian-faq-titles``: section titles paired by anchor, untranslated ones dropped."""
    from .debian_faq import FAQ_FOLDERS, read_faq_language  # noqa: PLC0415

    if lang not in FAQ_FOLDERS or lang == "en":
        return []
    english = {s.anchor: s.title for s in read_faq_language("en", mirror, download_dir)}
    pairs = [(english[s.anchor], s.title) for s in read_faq_language(lang, mirror, download_dir)
             if s.anchor in english and s.title
             and same_text_key(s.title) != same_text_key(english[s.anchor])]
    return [ParallelSet("debian-faq-titles", lang, [s for s, _ in pairs], [t for _, t in pairs])]


def reference_paragraph_set(mirror: str | os.PathLike, download_dir: str | os.PathLike,
                            lang: str) -> list[ParallelSet]:
    """``debian-reference-paragraphs``: chapter paragraphs aligned by position."""
    from .debian_reference import aligned_paragraphs, chapter_files  # noqa: PLC0415

    if lang == "en" or not chapter_files(lang):
        return []
    pairs = aligned_paragraphs(mirror, download_dir, "en", lang)
    return [ParallelSet("debian-reference-paragraphs", lang, [p.source for p in pairs],
                        [p.target for p in pairs])]


def ntrex_sets(mirror: str | os.PathLike, download_dir: str | os.PathLike,
               lang: str) -> list[ParallelSet]:
    """``ntrex-<code>`` per NTREX-128 reference of ``lang`` (``pt``: ``ntrex-por`` and
    ``ntrex-por-BR``, sampled alike; only the first gets a pt->en row); none for English or a
    language NTREX does not have here."""
    from .ntrex import LANGUAGE_FILES, REFERENCE_VARIETIES, SOURCE_CODE, document_ids, \
        read_lines  # noqa: PLC0415

    if lang == "en" or lang not in LANGUAGE_FILES:
        return []
    lines = len(document_ids(mirror, download_dir))
    english = read_lines(SOURCE_CODE, mirror, download_dir, expected=lines)
    codes = [LANGUAGE_FILES[lang]] + [code for code, variety_of in REFERENCE_VARIETIES.items()
                                      if variety_of == lang]
    return [ParallelSet(f"ntrex-{code}", lang, english,
                        read_lines(code, mirror, download_dir, expected=lines),
                        sample_key="ntrex", reverse=code == LANGUAGE_FILES[lang])
            for code in codes]


_READERS = {"xquad-r": xquad_sets, "debian-faq": faq_title_set,
            "debian-reference": reference_paragraph_set, "ntrex": ntrex_sets}


def load_test_sets(names: list[str], lang: str, mirror: str | os.PathLike,
                   download_dir: str | os.PathLike) -> list[ParallelSet]:
    """The named test sets that exist for ``lang`` (a set without the language is skipped)."""
    unknown = [n for n in names if n not in _READERS]
    if unknown:
        raise PipelineError(f"params.yaml: 'mt_quality.test_sets' has {unknown}, expected "
                            f"some of {', '.join(TEST_SETS)}")
    return [s for name in names for s in _READERS[name](mirror, download_dir, lang)
            if s.sources]


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _mecab_works(tokenizer: str) -> bool:
    """Whether sacrebleu's MeCab tokenizer loads here (it needs mecab-python3 and a dictionary)."""
    from sacrebleu.metrics import BLEU  # noqa: PLC0415

    try:
        BLEU(tokenize=tokenizer).corpus_score(["テスト"], [["テスト"]])
    except Exception:  # noqa: BLE001 - ImportError, RuntimeError from MeCab, missing dictionary
        return False
    return True


def bleu_tokenizer(lang: str) -> str:
    """sacrebleu tokenizer for BLEU on ``lang``: ``zh`` for Chinese, ``ja-mecab``/``ko-mecab``
    when MeCab works offline, ``char`` for other languages written without spaces (and for
    ja/ko without MeCab), ``13a`` (sacrebleu's default) otherwise."""
    if lang == "zh":
        return "zh"
    if lang in ("ja", "ko") and _mecab_works(f"{lang}-mecab"):
        return f"{lang}-mecab"
    return "char" if lang in CHARACTER_BLEU_LANGUAGES else "13a"


def score(hypotheses: list[str], references: list[str], lang: str) -> dict[str, Any]:
    """Corpus chrF++ (``CHRF(word_order=2)``) and BLEU of ``hypotheses`` in ``lang``, with the
    sacrebleu signatures that say how they were computed."""
    from sacrebleu.metrics import BLEU, CHRF  # noqa: PLC0415

    chrf, bleu = CHRF(word_order=2), BLEU(tokenize=bleu_tokenizer(lang))
    return {"chrf": round(chrf.corpus_score(hypotheses, [references]).score, 2),
            "bleu": round(bleu.corpus_score(hypotheses, [references]).score, 2),
            "chrf_signature": chrf.get_signature().format(),
            "bleu_signature": bleu.get_signature().format()}


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

def _row(engine: Engine, test_set: str, n: int, scores: dict[str, Any],
         seconds: float) -> dict[str, Any]:
    return {"engine": engine.name, "model": engine.model, "src_lang": engine.src_lang,
            "tgt_lang": engine.tgt_lang, "test_set": test_set, "n": n, **scores,
            "seconds": round(seconds, 2)}


def _translate(engine: Engine, texts: list[str], desc: str,
               memo: dict[tuple[Any, ...], tuple[list[str], float]] | None = None
               ) -> tuple[list[str], float]:
    """Translations of ``texts`` and the seconds they took; with ``memo``, a list already
    translated by this direction is not translated again (its first seconds are returned)."""
    key = (engine.src_lang, engine.tgt_lang, tuple(texts))
    if memo is not None and key in memo:
        return memo[key]
    start = time.perf_counter()
    out, _ = translate_texts(engine, texts, desc=desc)
    result = out, time.perf_counter() - start
    if memo is not None:
        memo[key] = result
    return result


def evaluate(models_dir: str | os.PathLike, options: DecodingOptions, test_sets: list[str],
             max_pairs: int, seed: int, mirror: str | os.PathLike,
             download_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Score every en->X direction in ``models_dir`` (and X->en where converted) on the test
    sets available for X. Output: ``"<src>-<tgt>/<test set>"`` -> row (engine, model,
    languages, n, chrf, bleu, both signatures, seconds; en->X rows also ``roundtrip_chrf``
    and its signature when X->en exists). Sources already translated for another set (a
    second reference of the same sample) are not translated again."""
    directions = available_directions(models_dir)
    if not directions:
        raise PipelineError(f"{models_dir}: no converted directions (*/engine.json); run the "
                            f"convert_nmt stage first")
    rows: dict[str, dict[str, Any]] = {}
    memo: dict[tuple[Any, ...], tuple[list[str], float]] = {}
    for src, tgt in directions:
        if src != "en":
            continue
        forward = load_engine(models_dir, "en", tgt, options)
        backward = load_engine(models_dir, tgt, "en", options) if (tgt, "en") in directions \
            else None
        for full_set in load_test_sets(test_sets, tgt, mirror, download_dir):
            pairs = full_set.sample(max_pairs, seed)
            hyps, seconds = _translate(forward, pairs.sources, f"en->{tgt} {pairs.name}", memo)
            row = _row(forward, pairs.name, len(hyps), score(hyps, pairs.references, tgt),
                       seconds)
            if backward is not None:
                round_trip, _ = _translate(backward, hyps, f"{tgt}->en round trip", memo)
                trip = score(round_trip, pairs.sources, "en")
                row["roundtrip_chrf"] = trip["chrf"]
                row["roundtrip_chrf_signature"] = trip["chrf_signature"]
            if backward is not None and pairs.reverse:
                back, seconds = _translate(backward, pairs.references, f"{tgt}->en {pairs.name}",
                                           memo)
                rows[f"{tgt}-en/{pairs.name}"] = _row(
                    backward, pairs.name, len(back), score(back, pairs.sources, "en"), seconds)
            rows[f"en-{tgt}/{pairs.name}"] = row
            log.info("en->%s %s: n=%d chrF++ %.1f BLEU %.1f", tgt, pairs.name, row["n"],
                     row["chrf"], row["bleu"])
    return dict(sorted(rows.items()))
