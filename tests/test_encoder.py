"""The encoder wrapper: loading, pooling, and encode_texts (order, dedupe, batching, odd text)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from hybrid_retrieval.encoder import (embed, encode_texts, load_encoder, mean_pool,
                                      sanitize_text, token_budget_batches)
from hybrid_retrieval.errors import PipelineError

ODD_TEXTS = [
    "",                                   # empty
    "word " * 3000,                       # far longer than max_length
    "a" * 200_000,                        # one huge "word"
    "مرحبا بالعالم",                      # RTL
    "שלום \u200f עולם \u202e",            # RTL with direction marks
    "北京是中国的首都。東京は日本の首都です。",  # CJK
    "emoji 😀🎉👩‍👩‍👧 flags 🇫🇷",
    "nul\x00 bell\x07 esc\x1b tab\t nl\n cr\r",
    "lone surrogate \ud800 here \udfff",
    "\ufeffBOM and zero\u200bwidth",
    "   ",
]


@pytest.fixture(scope="module")
def tiny(tiny_encoder_dir: Path):
    return load_encoder(tiny_encoder_dir)


def _encode(tiny, texts, **kw):
    model, tokenizer = tiny
    args = dict(prefix="query: ", max_length=64, batch_tokens=256)
    args.update(kw)
    return encode_texts(model, tokenizer, texts, **args)


def test_load_encoder_missing_folder_names_path_and_stage(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"no_such_encoder.*does not exist.*convert_encoder"):
        load_encoder(tmp_path / "no_such_encoder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match=r"empty.*no config.json"):
        load_encoder(tmp_path / "empty")


def test_load_encoder_returns_eval_model_without_pooler(tiny) -> None:
    model, tokenizer = tiny
    assert not model.training
    assert getattr(model, "pooler", None) is None
    assert tokenizer.pad_token_id is not None


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[5.0, 6.0], [7.0, 7.0], [8.0, 8.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    pooled = mean_pool(hidden, mask)
    assert torch.allclose(pooled, torch.tensor([[2.0, 3.0], [5.0, 6.0]]))
    assert torch.equal(mean_pool(hidden, torch.zeros_like(mask)), torch.zeros(2, 2))


def test_embed_is_normalised_and_differentiable(tiny) -> None:
    model, tokenizer = tiny
    batch = tokenizer(["query: a b", "passage: Paris"], padding=True, return_tensors="pt",
                      return_token_type_ids=False)
    model.train()
    try:
        out = embed(model, batch)
        out.sum().backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert out.requires_grad


def test_encode_texts_matches_one_by_one_and_keeps_order(tiny) -> None:
    texts = ["Paris is the capital.", "a", "What is the capital of France?", "a",
             "Париж является столицей Франции.", "Paris is the capital."]
    batched = _encode(tiny, texts, batch_tokens=64)
    assert batched.dtype == np.float32 and batched.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    model, tokenizer = tiny
    for i, text in enumerate(texts):
        enc = tokenizer(["query: " + text], return_tensors="pt", return_token_type_ids=False)
        with torch.no_grad():
            single = embed(model, enc)[0].numpy()
        np.testing.assert_allclose(batched[i], single, atol=1e-5)
    # duplicates are the very same row, distinct texts differ
    assert np.array_equal(batched[1], batched[3]) and np.array_equal(batched[0], batched[5])
    assert not np.allclose(batched[0], batched[2])


def test_encode_texts_encodes_each_distinct_text_once(tiny, monkeypatch) -> None:
    model, tokenizer = tiny
    seen: list[int] = []
    original = model.forward

    def counting_forward(*args, **kwargs):
        seen.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting_forward)
    out = _encode(tiny, ["b", "a", "b", "b", "c", "a"])
    assert sum(seen) == 3 and out.shape == (6, 32)


def test_encode_texts_prefix_changes_embedding(tiny) -> None:
    q = _encode(tiny, ["Paris"], prefix="query: ")
    p = _encode(tiny, ["Paris"], prefix="passage: ")
    assert not np.allclose(q, p)


def test_encode_texts_odd_strings_do_not_crash(tiny, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="hybrid_retrieval.encoder"):
        out = _encode(tiny, ODD_TEXTS, max_length=32, batch_tokens=100)
    assert out.shape == (len(ODD_TEXTS), 32)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    model, tokenizer = tiny
    too_long = sum(len(tokenizer("query: " + sanitize_text(t))["input_ids"]) > 32
                   for t in ODD_TEXTS)
    assert too_long >= 2  # the two very long ones at least
    assert f"{too_long} of 11 distinct texts were longer than max_length=32" in caplog.text


def test_encode_texts_empty_list_and_bad_arguments(tiny) -> None:
    assert _encode(tiny, []).shape == (0, 32)
    with pytest.raises(PipelineError, match="max_length"):
        _encode(tiny, ["a"], max_length=10_000)
    with pytest.raises(PipelineError, match="batch_tokens"):
        _encode(tiny, ["a"], batch_tokens=0)


def test_encode_texts_restores_training_mode(tiny) -> None:
    model, _ = tiny
    model.train()
    try:
        _encode(tiny, ["a"])
        assert model.training
    finally:
        model.eval()


def test_sanitize_text_replaces_lone_surrogates_only() -> None:
    assert sanitize_text("ok \x00 😀") == "ok \x00 😀"
    cleaned = sanitize_text("a\ud800b")
    cleaned.encode("utf-8")
    assert cleaned.startswith("a") and cleaned.endswith("b") and "\ufffd" in cleaned


def test_token_budget_batches_respects_budget_and_covers_all() -> None:
    lengths = np.array([5, 50, 3, 20, 20, 7, 1, 60])
    batches = token_budget_batches(lengths, batch_tokens=60)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(8))
    assert lengths[flat].tolist() == sorted(lengths.tolist(), reverse=True)
    for batch in batches:
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 60
    # a single text longer than the budget still forms its own batch
    assert [b.tolist() for b in token_budget_batches(np.array([100, 2]), 10)] == [[0], [1]]
