"""InfoNCE with in-batch negatives: the contrastive loss the retriever is trained with."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import PipelineError


def info_nce_loss(query_embeddings: Tensor, passage_embeddings: Tensor,
                  temperature: float = 0.05) -> Tensor:
    """Mean cross-entropy of each query against all passages of the batch.

    Args:
        query_embeddings: ``(batch, dim)``, L2-normalised (so the dot product is the cosine).
        passage_embeddings: ``(batch, dim)``, L2-normalised; row ``i`` is query ``i``'s positive
            and every other row is one of its negatives.
        temperature: the similarities are divided by it before the softmax (0.05 = scale 20).

    Returns:
        A scalar: ``mean_i -log softmax(q_i . P^T / temperature)[i]``.
    """
    if query_embeddings.shape != passage_embeddings.shape or query_embeddings.dim() != 2:
        raise ValueError(f"expected two (batch, dim) tensors of one shape, got "
                         f"{tuple(query_embeddings.shape)} and {tuple(passage_embeddings.shape)}")
    # In float32 even under autocast: bf16 resolves cosines only to ~0.004, i.e. ~0.08 after
    # dividing by 0.05, which is as large as the differences the loss has to learn from.
    with torch.autocast(query_embeddings.device.type, enabled=False):
        logits = query_embeddings.float() @ passage_embeddings.float().T / temperature
        targets = torch.arange(len(logits), device=logits.device)
        return F.cross_entropy(logits, targets)


class InfoNCELoss(nn.Module):
    """InfoNCE over a batch of (query, positive passage) pairs with in-batch negatives.

    The same objective as sentence-transformers' ``MultipleNegativesRankingLoss`` with cosine
    similarity and ``scale = 1 / temperature``, but on embeddings rather than on a model, so that
    the training loop decides how texts are encoded (prefixes, autocast, DDP).

    The sampler must guarantee that no two rows of a batch share a pair, a query or a passage:
    otherwise a positive would also count as a negative.

    Args:
        temperature: > 0; lower values sharpen the softmax (0.05 as in E5).
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not temperature > 0:
            raise PipelineError(f"temperature is {temperature!r}, expected a number > 0")
        self.temperature = float(temperature)

    def forward(self, query_embeddings: Tensor, passage_embeddings: Tensor) -> Tensor:
        """Scalar loss for ``(batch, dim)`` query and passage embeddings (see :func:`info_nce_loss`)."""
        return info_nce_loss(query_embeddings, passage_embeddings, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
