"""The padding-free training forward (hybrid_retrieval.packed) against the padded one."""

from __future__ import annotations

import pytest
import torch

from hybrid_retrieval import packed
from hybrid_retrieval.encoder import DualEncoder, embed, load_encoder, tokenize
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.packed import (PackedDualEncoder, fast_dropout, packed_embed,
                                     supports_packing)
from hybrid_retrieval.training import build_dual_encoder

QUERIES = ["what is a package", "¿dónde?", "Как установить пакет из исходников вручную"]
PASSAGES = ["A package is an archive of files and metadata. " * k for k in (1, 3, 6, 9)][:3]


def _batches(tokenizer):
    cpu = torch.device("cpu")
    return (tokenize(tokenizer, QUERIES, "query: ", 24, cpu),
            tokenize(tokenizer, PASSAGES, "passage: ", 128, cpu))


def _gradients(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _loss(query_embeddings, passage_embeddings):
    return (query_embeddings @ passage_embeddings.T / 0.05).log_softmax(dim=1).diag().sum()


def test_packed_forward_gives_the_padded_embeddings_and_gradients(tiny_encoder_dir):
    model, tokenizer = load_encoder(tiny_encoder_dir)
    queries, passages = _batches(tokenizer)
    assert queries["attention_mask"].shape[1] < passages["attention_mask"].shape[1]
    assert bool((queries["attention_mask"] == 0).any())  # there is padding to skip
    padded = DualEncoder(model)(queries, passages)
    _loss(*padded).backward()
    padded_gradients = _gradients(model)
    model.zero_grad()
    packed_out = PackedDualEncoder(model)(queries, passages)
    _loss(*packed_out).backward()
    for a, b in zip(padded, packed_out):
        assert a.shape == b.shape and a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(padded_gradients, _gradients(model), atol=1e-5, rtol=1e-4)


def test_packed_attention_with_dropout_path_is_the_same_function(tiny_encoder_dir, monkeypatch):
    """In training mode the explicit (dropout) attention path runs; with the dropout draws
    replaced by the identity it must equal the padded forward without dropout."""
    model, tokenizer = load_encoder(tiny_encoder_dir)
    queries, passages = _batches(tokenizer)
    expected = [embed(model, queries), embed(model, passages)]  # eval mode: no dropout
    monkeypatch.setattr(packed, "fast_dropout", lambda x, p, training: x)
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1 if module.p == 0 else module.p
            module.eval()  # the embeddings' HF dropout stays off; packed.py's own is patched
    for layer in model.encoder.layer:
        layer.attention.self.train()
        assert layer.attention.self.dropout.p > 0
    for a, b in zip(expected, packed_embed(model, [queries, passages])):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_fast_dropout_keeps_the_expectation_and_the_drop_share():
    torch.manual_seed(0)
    x = torch.ones(400_003)
    out = fast_dropout(x, 0.1, training=True)
    dropped = float((out == 0).float().mean())
    assert abs(dropped - 0.1) < 0.003
    assert abs(float(out.mean()) - 1.0) < 0.005
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 65536 / (65536 - 6554)))
    assert fast_dropout(x, 0.1, training=False) is x
    assert fast_dropout(x, 0.0, training=True) is x
    # same seed, same mask
    torch.manual_seed(1)
    first = fast_dropout(x[:1000], 0.5, True)
    torch.manual_seed(1)
    assert torch.equal(first, fast_dropout(x[:1000], 0.5, True))


def test_a_row_without_tokens_and_unsupported_models_are_errors(tiny_encoder_dir):
    model, tokenizer = load_encoder(tiny_encoder_dir)
    queries, _ = _batches(tokenizer)
    empty = {k: v.clone() for k, v in queries.items()}
    empty["attention_mask"][1] = 0
    with pytest.raises(ValueError, match="no real token"):
        packed_embed(model, [empty])

    class NotBert(torch.nn.Module):
        config = type("Config", (), {"model_type": "t5"})()

    assert supports_packing(model) and not supports_packing(NotBert())
    with pytest.raises(PipelineError, match="train.packing"):
        build_dual_encoder(NotBert(), packing=True)
    assert type(build_dual_encoder(NotBert(), packing=False)) is DualEncoder
    assert type(build_dual_encoder(model, packing=True)) is PackedDualEncoder
