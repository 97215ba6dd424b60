"""Up-front memory estimates: a params file that cannot fit fails in seconds, naming the param.

:func:`check_training_memory` (stage ``train``) and :func:`check_inference_memory` (stage
``evaluate``) estimate the peak memory of the run from the encoder's ``config.json`` and weight
files and from the batch settings, *before* any data or model is loaded, and raise
:class:`PipelineError` naming the parameter to lower when the estimate exceeds the memory that
is available (``MemAvailable`` of ``/proc/meminfo`` on a CPU, the free memory of the GPU on
CUDA).

The estimates are deliberately simple upper-bound-ish sums, meant to catch absurd settings
(``batch_size: 1000000``), not to tune a run:

* training, per rank: weights + gradients and two AdamW moments of the trainable weights +
  the activations autograd keeps for every layer of a micro-batch, with both the query and
  the passage side padded to ``max_length``: per token and layer ``10 h + 2 i`` floats
  (hidden states, Q/K/V, projections, LayerNorm and feed-forward inputs) plus ``3 a s`` for the
  attention scores, probabilities and dropout mask (``h`` hidden size, ``i`` feed-forward size,
  ``a`` heads, ``s`` sequence length), 4 bytes each;
* inference (no autograd): weights + the largest batch's live tensors of one layer,
  ``batch_tokens x (8 h + i + 2 a s)`` floats.

The calibration point: multilingual-e5-small (h 384, i 1536, 12 layers, 12 heads, 470 MB of
fp32 weights, word embeddings frozen) at ``batch_size 32, max_length 64`` estimates 2.5 GB;
the real ``train`` process of the default params runs at about 3.6 GB RSS, which includes
~0.5 GB of libraries, the shards and bf16 autocast copies. ``HR_SKIP_MEMORY_CHECK=1`` skips
the checks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path

import torch

from .encoder import max_input_tokens
from .errors import PipelineError

GIB = 1024 ** 3
FLOAT_BYTES = 4
_WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin")


@dataclass(frozen=True)
class EncoderShape:
    """What sizes an encoder's memory: ``config.json`` fields and the weight files' bytes."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int
    weight_bytes: int
    max_tokens: int | None = None

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> "EncoderShape | None":
        """The shape of an encoder folder; ``None`` if its config.json is absent or unreadable
        (the model loader reports that, with the stage that makes the folder)."""
        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            hidden = int(config["hidden_size"])
            shape = cls(hidden=hidden,
                        intermediate=int(config.get("intermediate_size", 4 * hidden)),
                        layers=int(config["num_hidden_layers"]),
                        heads=int(config["num_attention_heads"]),
                        vocab=int(config.get("vocab_size", 0)),
                        weight_bytes=0,
                        max_tokens=max_input_tokens(SimpleNamespace(**config)))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        weights = sum(p.stat().st_size for pattern in _WEIGHT_FILES for p in folder.glob(pattern))
        return cls(**{**shape.__dict__, "weight_bytes": weights})


def available_memory(device: torch.device) -> int | None:
    """Bytes available to a new allocation on ``device``: free GPU memory on CUDA, else the
    kernel's ``MemAvailable`` (``None`` where neither can be read)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def training_memory(shape: EncoderShape, *, batch_size: int, max_length: int,
                    freeze_word_embeddings: bool) -> dict[str, int]:
    """Estimated bytes of one training rank: ``weights``, ``optimizer`` (gradients + AdamW
    moments of the trainable weights), ``activations`` and their ``total``."""
    frozen = shape.vocab * shape.hidden * FLOAT_BYTES if freeze_word_embeddings else 0
    trainable = max(shape.weight_bytes - frozen, 0)
    per_token_layer = (10 * shape.hidden + 2 * shape.intermediate
                       + 3 * shape.heads * max_length) * FLOAT_BYTES
    tokens = 2 * batch_size * max_length  # queries and passages, each padded to max_length
    parts = {"weights": shape.weight_bytes, "optimizer": 3 * trainable,
             "activations": tokens * shape.layers * per_token_layer}
    parts["total"] = sum(parts.values())
    return parts


def inference_memory(shape: EncoderShape, *, batch_tokens: int, max_length: int) -> dict[str, int]:
    """Estimated bytes of encoding batches of ``batch_tokens`` padded tokens without autograd."""
    per_token = (8 * shape.hidden + shape.intermediate
                 + 2 * shape.heads * max_length) * FLOAT_BYTES
    parts = {"weights": shape.weight_bytes, "activations": batch_tokens * per_token}
    parts["total"] = sum(parts.values())
    return parts


def _skip(shape: EncoderShape | None, max_length: int) -> bool:
    # A max_length beyond the model's positions is reported, more precisely, when it loads.
    return shape is None or os.environ.get("HR_SKIP_MEMORY_CHECK", "") not in ("", "0") \
        or shape.max_tokens is not None and max_length > shape.max_tokens


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def check_training_memory(*, batch_size: int, max_length: int, freeze_word_embeddings: bool,
                          encoder: str | os.PathLike, device: torch.device,
                          available: int | None = None) -> dict[str, int] | None:
    """Raise :class:`PipelineError` naming ``train.batch_size`` when one training rank would
    not fit in the memory available on ``device``; returns the estimate (``None`` when the
    encoder folder cannot be read, ``max_length`` exceeds the model's positions (the model
    loader reports that) or the check is skipped)."""
    shape = EncoderShape.from_folder(encoder)
    if _skip(shape, max_length):
        return None
    estimate = training_memory(shape, batch_size=batch_size, max_length=max_length,
                               freeze_word_embeddings=freeze_word_embeddings)
    available = available_memory(device) if available is None else available
    if available is not None and estimate["total"] > available:
        raise PipelineError(
            f"params.yaml: 'train.batch_size' is {batch_size} (with 'train.max_length' "
            f"{max_length}): one training step would need about {_gib(estimate['total'])} "
            f"({_gib(estimate['activations'])} of activations for 2 x {batch_size} x "
            f"{max_length} tokens through {shape.layers} layers of width {shape.hidden}, plus "
            f"weights and optimizer state of {encoder}) but {_gib(available)} is available on "
            f"{device}; expected a smaller train.batch_size or train.max_length (raise "
            f"train.grad_accum_steps to keep the effective batch)")
    return estimate


def check_inference_memory(*, batch_tokens: int, max_length: int, encoder: str | os.PathLike,
                           device: torch.device, param: str = "evaluate",
                           available: int | None = None) -> dict[str, int] | None:
    """Raise :class:`PipelineError` naming ``<param>.batch_tokens`` when encoding batches of
    that many tokens would not fit on ``device``; returns the estimate (or ``None``)."""
    shape = EncoderShape.from_folder(encoder)
    if _skip(shape, max_length):
        return None
    estimate = inference_memory(shape, batch_tokens=batch_tokens, max_length=max_length)
    available = available_memory(device) if available is None else available
    if available is not None and estimate["total"] > available:
        raise PipelineError(
            f"params.yaml: '{param}.batch_tokens' is {batch_tokens}: encoding batches of that "
            f"many tokens with {encoder} would need about {_gib(estimate['total'])} but "
            f"{_gib(available)} is available on {device}; expected a smaller "
            f"{param}.batch_tokens")
    return estimate
