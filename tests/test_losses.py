"""InfoNCE: exact value on a hand-computed case, gradients, validation."""

from __future__ import annotations

import math

import pytest
import torch

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.losses import InfoNCELoss, info_nce_loss


def test_hand_computed_two_by_two():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    passages = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # Similarities: q0 -> [1.0, 0.6], q1 -> [0.0, 0.8]; at temperature 0.5 -> [2.0, 1.2], [0.0, 1.6].
    # -log softmax of the diagonal: log(1 + e^(1.2 - 2.0)) and log(1 + e^(0.0 - 1.6)).
    expected = (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6))) / 2
    assert info_nce_loss(queries, passages, temperature=0.5).item() == pytest.approx(expected, abs=1e-6)
    assert InfoNCELoss(0.5)(queries, passages).item() == pytest.approx(0.2775007, abs=1e-6)


def test_matches_sentence_transformers_formula_and_learns():
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1).requires_grad_()
    p = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    loss = InfoNCELoss()(q, p)
    scores = 20.0 * q @ p.T  # MultipleNegativesRankingLoss: scale 20 == temperature 0.05
    reference = -(scores.diagonal() - torch.logsumexp(scores, dim=1)).mean()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    loss.backward()
    # Moving the queries against the gradient lowers the loss.
    with torch.no_grad():
        assert InfoNCELoss()(q - 0.01 * q.grad, p) < loss
    # A perfect, well separated batch has a near-zero loss.
    eye = torch.eye(4)
    assert InfoNCELoss()(eye, eye).item() < 1e-6


def test_float32_under_autocast():
    q = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = InfoNCELoss()(q.bfloat16(), q.bfloat16())
    assert loss.dtype == torch.float32


@pytest.mark.parametrize("bad", [0, -0.05, "0.05", None, True])
def test_bad_temperature(bad):
    with pytest.raises(PipelineError, match="temperature"):
        InfoNCELoss(bad)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="batch, dim"):
        info_nce_loss(torch.zeros(2, 3), torch.zeros(3, 3))
