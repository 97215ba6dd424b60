"""Retrieval metrics from a score matrix and gold candidates: pure, vectorised numpy.

Everything starts from the **rank of every gold** of every query, computed once
(:func:`gold_ranks`); all metrics are functions of those ranks.

Inputs
    ``scores``: (queries, candidates) similarities, higher is better (any float dtype; it is not
    copied to float64). ``gold_index``: (queries, G) int candidate columns of each query's golds,
    padded with -1 (:func:`pad_gold_lists` builds it from ragged lists); a row's golds are
    distinct.

Tie policy (pessimistic)
    A gold is ranked *after* every non-gold candidate with an equal score; golds tied with each
    other take consecutive ranks (which of them comes first changes no metric). So the rank of
    gold ``g`` is ``1 + #{non-golds with score >= s_g} + #{golds ranked before g}``. Identical
    candidate texts get identical scores (the evaluation scores each distinct text once), so a
    non-gold duplicate of a gold always goes first, never by chance. AP then equals
    ``sklearn.metrics.average_precision_score`` (what LAReQA's code used) whenever no two golds
    of a query share a score; sklearn instead gives all golds of a tie group the group's final
    precision. With continuous scores (no ties) all of these agree with ``ranx``/``trec_eval``.

Definitions (``r_1 < r_2 < ... < r_R`` are a query's gold ranks, ``R`` its number of golds)
    * average precision ``AP = (1/R) * sum_i i / r_i`` (golds at ranks 1 and 3: (1 + 2/3) / 2);
      mAP is its mean over queries (as ``trec_eval``/``ranx`` ``map``).
    * ``AP@k = (sum_{i: r_i <= k} i / r_i) / min(R, k)``: XTREME-R's mAP@k for LAReQA
      (``utils_lareqa.average_precision_at_k``, run with k = 20); it differs from ranx/trec_eval
      ``map@k`` (which divide by ``R``) only when ``R > k``.
    * ``Recall@k = #{i: r_i <= k} / R`` (standard IR recall, as ``ranx``/``trec_eval``); with one
      gold per query (LAReQA mono/cross-lingual) it equals hit rate / accuracy@k.
    * rank distance (language bias) ``= r_R - r_1``: how far apart the best and the worst gold
      land. In a multilingual pool whose golds are one answer per language, a language-agnostic
      model puts them together (distance ``R - 1``); a language-biased one pushes the answers
      in other languages down. Undefined (NaN) with fewer than two golds.

Queries without golds get NaN per-query values; the means skip them (``nan_mean``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Broadcast comparisons are done in query chunks of at most this many elements (bytes as bool).
COMPARE_CHUNK_ELEMENTS = 1 << 25


def pad_gold_lists(golds: Sequence[Sequence[int]], width: int | None = None) -> np.ndarray:
    """Ragged per-query gold column lists -> (queries, width) int64 array padded with -1."""
    width = max((len(g) for g in golds), default=0) if width is None else width
    out = np.full((len(golds), width), -1, dtype=np.int64)
    for row, g in enumerate(golds):
        out[row, :len(g)] = g
    return out


def gold_ranks(scores: np.ndarray, gold_index: np.ndarray, *,
               chunk_elements: int = COMPARE_CHUNK_ELEMENTS) -> np.ndarray:
    """1-based rank of each gold in its query's ranking, with the pessimistic tie policy.

    ``scores`` (n, N), ``gold_index`` (n, G) with -1 padding. Returns (n, G) int64, -1 where
    ``gold_index`` is -1. Raises ``ValueError`` for non-finite scores, out-of-range or repeated
    gold columns. Memory: O(chunk_elements) on top of the inputs.
    """
    scores = np.asarray(scores)
    gold_index = np.asarray(gold_index, dtype=np.int64)
    if scores.ndim != 2 or gold_index.ndim != 2 or gold_index.shape[0] != scores.shape[0]:
        raise ValueError(f"scores {scores.shape} and gold_index {gold_index.shape} must be "
                         f"(n, N) and (n, G)")
    n, n_cands = scores.shape
    width = gold_index.shape[1]
    valid = gold_index >= 0
    if (gold_index >= n_cands).any():
        raise ValueError(f"gold_index has columns >= {n_cands} (the number of candidates)")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    ranks = np.full((n, width), -1, dtype=np.int64)
    if width == 0 or n == 0:
        return ranks
    ordered = np.sort(np.where(valid, gold_index, n_cands), axis=1)
    if ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] < n_cands)).any():
        raise ValueError("a query lists the same gold column twice")

    rows_per_chunk = max(1, chunk_elements // max(1, width * n_cands))
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        s = scores[start:stop]
        if s.strides[-1] != s.itemsize:   # e.g. column-major: 10x slower to compare row-wise
            s = np.ascontiguousarray(s)
        idx = gold_index[start:stop]
        ok = valid[start:stop]
        g = np.take_along_axis(s, np.where(ok, idx, 0), axis=1)          # (c, G) gold scores
        at_least = (s[:, None, :] >= g[:, :, None]).sum(axis=2)          # all candidates >= s_g
        # golds among them: each other gold h with s_h >= s_g (and g itself)
        gold_ge = ((g[:, None, :] >= g[:, :, None]) & ok[:, None, :]).sum(axis=2)
        # golds ranked before g: strictly higher, or equal and earlier in the gold list
        earlier = np.tri(width, k=-1, dtype=bool)[None]                  # [g, h]: h before g
        before = (((g[:, None, :] > g[:, :, None]) |
                   ((g[:, None, :] == g[:, :, None]) & earlier)) & ok[:, None, :]).sum(axis=2)
        chunk_ranks = 1 + (at_least - gold_ge) + before
        ranks[start:stop] = np.where(ok, chunk_ranks, -1)
    return ranks


def _sorted_ranks(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's gold ranks ascending as float (padding -> inf), and the number of golds."""
    ranks = np.asarray(ranks)
    as_float = np.where(ranks > 0, ranks, np.inf).astype(np.float64)
    return np.sort(as_float, axis=1), (ranks > 0).sum(axis=1)


def average_precision(ranks: np.ndarray) -> np.ndarray:
    """Per-query AP from gold ranks (n, G): ``(1/R) sum_i i / r_i``; NaN for a query without golds."""
    ordered, n_golds = _sorted_ranks(ranks)
    position = np.arange(1, ordered.shape[1] + 1, dtype=np.float64)
    total = (position / ordered).sum(axis=1)                             # i / inf = 0 for padding
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_golds > 0, total / n_golds, np.nan)


def average_precision_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-query AP@k (XTREME-R): ``sum_{r_i <= k} i / r_i / min(R, k)``; NaN without golds."""
    if k < 1:
        raise ValueError(f"k is {k}, expected >= 1")
    ordered, n_golds = _sorted_ranks(ranks)
    position = np.arange(1, ordered.shape[1] + 1, dtype=np.float64)
    total = np.where(ordered <= k, position / ordered, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_golds > 0, total / np.minimum(n_golds, k), np.nan)


def recall_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-query Recall@k: fraction of the golds ranked in the top ``k``; NaN without golds."""
    if k < 1:
        raise ValueError(f"k is {k}, expected >= 1")
    ranks = np.asarray(ranks)
    n_golds = (ranks > 0).sum(axis=1)
    hits = ((ranks > 0) & (ranks <= k)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_golds > 0, hits / n_golds, np.nan)


def rank_distance(ranks: np.ndarray) -> np.ndarray:
    """Per-query worst minus best gold rank (language bias); NaN with fewer than two golds."""
    ranks = np.asarray(ranks)
    n_golds = (ranks > 0).sum(axis=1)
    big = np.iinfo(np.int64).max
    worst = ranks.max(axis=1, initial=0)
    best = np.where(ranks > 0, ranks, big).min(axis=1, initial=big)
    return np.where(n_golds >= 2, (worst - best).astype(np.float64), np.nan)


def nan_mean(values: np.ndarray) -> float:
    """Mean over the non-NaN entries; NaN when there are none (no warning)."""
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def mean_average_precision(ranks: np.ndarray) -> float:
    """mAP: mean AP over the queries that have golds."""
    return nan_mean(average_precision(ranks))


__all__ = ["pad_gold_lists", "gold_ranks", "average_precision", "average_precision_at_k",
           "recall_at_k", "rank_distance", "nan_mean", "mean_average_precision"]
