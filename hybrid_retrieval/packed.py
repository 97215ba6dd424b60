"""Padding-free encoder forward for training: the token-wise layers run on real tokens only.

A training batch is padded to its longest text, and most texts are shorter (queries ~15 tokens
padded to ~35, passages ~40 padded to 64), so a padded forward spends most of its matrix
products, layer norms and activations on padding. :func:`packed_embed` gathers the real tokens of
one or more batches into a single ``(tokens, hidden)`` matrix, runs every linear layer, layer norm
and activation on it, and scatters it into the padded ``(rows, heads, width, head_dim)`` layout
only for the (masked) attention. Query and key/value projections are one matrix product.

The embeddings and gradients are mathematically those of :func:`hybrid_retrieval.encoder.embed`
(padding is masked out of attention and pooling there too); float rounding differs (other
matrix shapes), and dropout draws other masks. Supported: BERT-layout encoders with absolute
positions (``BertModel``, XLM-R, RoBERTa); :func:`supports_packing` says whether a model is one.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from .encoder import DualEncoder
from .errors import PipelineError

_PACKABLE_MODEL_TYPES = {"bert", "xlm-roberta", "roberta", "camembert"}


def supports_packing(model: torch.nn.Module) -> bool:
    """True if ``model`` is a BERT-layout encoder :func:`packed_embed` can run."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in _PACKABLE_MODEL_TYPES:
        return False
    if getattr(config, "position_embedding_type", "absolute") != "absolute" \
            or getattr(config, "is_decoder", False) \
            or getattr(config, "chunk_size_feed_forward", 0):
        return False
    try:
        layer = model.encoder.layer[0]
        parts = (layer.attention.self.query, layer.attention.self.key,
                 layer.attention.self.value, layer.attention.self.dropout,
                 layer.attention.output.dense, layer.attention.output.LayerNorm,
                 layer.attention.output.dropout, layer.intermediate, layer.output.dense,
                 layer.output.LayerNorm, layer.output.dropout, model.embeddings)
    except (AttributeError, IndexError):
        return False
    return all(part is not None for part in parts)


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with drop probability ``p`` (to 1/65536) from 16-bit random draws.

    ``torch.nn.functional.dropout`` draws a Bernoulli per element, which on a CPU took about a
    quarter of a training step; one full-range 64-bit draw per four elements is ~3x cheaper
    and has the same distribution up to the 1/65536 rounding of ``p`` (kept rows are scaled by
    the exact inverse keep probability, so the expectation is unchanged).
    """
    if not training or p == 0.0:
        return x
    cutoff = round(p * 65536)
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64, device=x.device)
    draws = words.random_(-2**63, None).view(torch.int16)[:x.numel()].view(x.shape)
    return x * (draws >= cutoff - 32768) * (65536 / (65536 - cutoff))


def _attention(self_attention: torch.nn.Module, hidden: torch.Tensor, keep: torch.Tensor,
               rows: int, width: int, key_bias: torch.Tensor) -> torch.Tensor:
    """Masked multi-head self-attention of packed ``hidden`` (tokens, dim) -> (tokens, dim)."""
    heads, head_dim = self_attention.num_attention_heads, self_attention.attention_head_size
    projections = (self_attention.query, self_attention.key, self_attention.value)
    qkv = F.linear(hidden, torch.cat([p.weight for p in projections]),
                   torch.cat([p.bias for p in projections]))
    padded = qkv.new_zeros(rows * width, qkv.shape[1]).index_copy(0, keep, qkv)
    query, key, value = padded.view(rows, width, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    dropout = self_attention.dropout.p if self_attention.training else 0.0
    if dropout == 0.0:
        context = F.scaled_dot_product_attention(query, key, value,
                                                 attn_mask=key_bias.to(query.dtype))
    else:  # SDPA's dropout path on a CPU is its unfused reference code plus a Bernoulli draw
        scores = torch.matmul(query * head_dim ** -0.5, key.transpose(-1, -2))
        probabilities = torch.softmax(scores + key_bias.to(scores.dtype), dim=-1)
        context = torch.matmul(fast_dropout(probabilities, dropout, True).to(value.dtype), value)
    return context.transpose(1, 2).reshape(rows * width, heads * head_dim).index_select(0, keep)


def _residual(block: torch.nn.Module, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``BertSelfOutput`` / ``BertOutput``: LayerNorm(dropout(dense(x)) + residual)."""
    projected = fast_dropout(block.dense(x), block.dropout.p, block.training)
    return block.LayerNorm(projected + residual)


def packed_embed(model: torch.nn.Module,
                 batches: Sequence[Mapping[str, torch.Tensor]]) -> list[torch.Tensor]:
    """L2-normalised mean-pooled float32 embeddings of each tokenised batch in ``batches``
    (``input_ids``, ``attention_mask``, optional ``token_type_ids``; any widths), all encoded in
    one padding-free forward. Returns one ``(rows, dim)`` tensor per batch, in order.

    ``model`` must pass :func:`supports_packing`; every row needs at least one real token.
    """
    width = max(int(b["attention_mask"].shape[1]) for b in batches)
    masks, hidden = [], []
    for batch in batches:
        mask = batch["attention_mask"]
        extra = {"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}
        embedded = model.embeddings(input_ids=batch["input_ids"], **extra)
        hidden.append(embedded[mask.bool()])  # row-major: the order of ``keep`` below
        masks.append(F.pad(mask, (0, width - mask.shape[1])))
    mask = torch.cat(masks)
    counts = mask.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("packed_embed: a row has no real token (all-zero attention_mask)")
    rows = mask.shape[0]
    keep = mask.reshape(-1).nonzero().squeeze(1)
    # additive key mask: 0 for real keys, the float32 minimum for padding
    key_bias = ((1 - mask) * torch.finfo(torch.float32).min)[:, None, None, :].float()
    states = torch.cat(hidden)
    for layer in model.encoder.layer:
        context = _attention(layer.attention.self, states, keep, rows, width, key_bias)
        attended = _residual(layer.attention.output, context, states)
        states = _residual(layer.output, layer.intermediate(attended), attended)
    row_of_token = torch.div(keep, width, rounding_mode="floor")
    states = states.float()
    summed = states.new_zeros(rows, states.shape[1]).index_add(0, row_of_token, states)
    pooled = F.normalize(summed / counts.unsqueeze(1).to(summed.dtype), p=2, dim=-1)
    return list(pooled.split([int(b["attention_mask"].shape[0]) for b in batches]))


class PackedDualEncoder(DualEncoder):
    """:class:`~hybrid_retrieval.encoder.DualEncoder` whose forward encodes the query and the
    passage batch together in one :func:`packed_embed` (one pass through the layers, no padded
    positions in any matrix product). Needs an encoder that passes :func:`supports_packing`."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        if not supports_packing(encoder):
            model_type = getattr(getattr(encoder, "config", None), "model_type", None)
            raise PipelineError(f"train.packing is true, but the encoder ({model_type}) is not a "
                                f"BERT-layout encoder with absolute positions; set "
                                f"train.packing: false")
        super().__init__(encoder)

    def forward(self, queries: Mapping[str, torch.Tensor],
                passages: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        query_embeddings, passage_embeddings = packed_embed(self.encoder, [queries, passages])
        return query_embeddings, passage_embeddings


__all__ = ["PackedDualEncoder", "fast_dropout", "packed_embed", "supports_packing"]
