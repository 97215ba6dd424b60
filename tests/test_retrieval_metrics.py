"""Retrieval metrics: hand-computed cases, the tie policy, and a cross-check against ranx."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_retrieval.retrieval_metrics import (average_precision, average_precision_at_k,
                                                gold_ranks, mean_average_precision, nan_mean,
                                                pad_gold_lists, rank_distance, recall_at_k)


def test_average_precision_golds_at_ranks_1_and_3() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    ranks = gold_ranks(scores, np.array([[0, 2]]))
    assert ranks.tolist() == [[1, 3]]
    assert average_precision(ranks)[0] == pytest.approx((1 + 2 / 3) / 2)


def test_mean_average_precision_over_two_queries() -> None:
    scores = np.array([[0.1, 0.5, 0.3, 0.2],     # order 1,2,3,0: gold 0 at rank 4 -> AP 1/4
                       [0.4, 0.3, 0.2, 0.1]])    # golds 1, 3 at ranks 2, 4 -> (1/2 + 2/4)/2
    golds = pad_gold_lists([[0], [1, 3]])
    assert golds.tolist() == [[0, -1], [1, 3]]
    ranks = gold_ranks(scores, golds)
    assert ranks.tolist() == [[4, -1], [2, 4]]
    assert mean_average_precision(ranks) == pytest.approx((0.25 + 0.5) / 2)


def test_recall_at_k_is_fraction_of_golds_in_top_k() -> None:
    ranks = np.array([[1, 3, 12], [2, -1, -1], [11, -1, -1]])
    assert recall_at_k(ranks, 1).tolist() == pytest.approx([1 / 3, 0.0, 0.0])
    assert recall_at_k(ranks, 10).tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert recall_at_k(ranks, 12).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_average_precision_at_k_xtreme_r_definition() -> None:
    ranks = np.array([[1, 3, 25, -1], [2, 30, -1, -1], [21, -1, -1, -1], [1, 2, 3, 4]])
    ap20 = average_precision_at_k(ranks, 20)
    assert ap20[0] == pytest.approx((1 + 2 / 3) / 3)   # the rank-25 gold counts as missed
    assert ap20[1] == pytest.approx((1 / 2) / 2)
    assert ap20[2] == 0.0
    # more golds than k: divide by k, so a perfect top-k scores 1
    assert average_precision_at_k(ranks, 2)[3] == pytest.approx(1.0)
    assert average_precision(ranks)[3] == pytest.approx(1.0)
    # with all golds inside the top k, AP@k equals AP
    assert average_precision_at_k(ranks[3:], 20) == pytest.approx(average_precision(ranks[3:]))


def test_rank_distance_worst_minus_best_gold() -> None:
    ranks = np.array([[1, 2, 3], [5, 1, 40], [7, -1, -1]])
    distance = rank_distance(ranks)
    assert distance[:2].tolist() == [2.0, 39.0]
    assert np.isnan(distance[2])              # undefined with a single gold
    assert nan_mean(distance) == pytest.approx(20.5)


def test_ties_are_pessimistic_against_non_golds() -> None:
    # gold 1 ties with non-gold 0 and 2: it is ranked after both
    scores = np.array([[0.5, 0.5, 0.5, 0.1]])
    assert gold_ranks(scores, np.array([[1]])).tolist() == [[3]]
    # golds tied with each other take consecutive ranks after tied non-golds
    scores = np.array([[0.5, 0.5, 0.5, 0.9]])
    ranks = gold_ranks(scores, np.array([[2, 0]]))
    assert sorted(ranks[0].tolist()) == [3, 4]
    assert average_precision(ranks)[0] == pytest.approx((1 / 3 + 2 / 4) / 2)
    # identical scores for every candidate: golds land at the bottom
    ranks = gold_ranks(np.zeros((1, 5)), np.array([[4, 1]]))
    assert sorted(ranks[0].tolist()) == [4, 5]


def _brute_force_ap(scores_row: np.ndarray, gold: np.ndarray) -> float:
    """AP of the ranking by score, ties broken against the golds (non-golds first)."""
    is_gold = np.zeros(len(scores_row), dtype=bool)
    is_gold[gold] = True
    order = sorted(range(len(scores_row)), key=lambda c: (-scores_row[c], is_gold[c]))
    hits, total = 0, 0.0
    for position, c in enumerate(order, start=1):
        if is_gold[c]:
            hits += 1
            total += hits / position
    return total / len(gold)


def test_ties_match_brute_force_ranking_and_sklearn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(200, 12)).astype(np.float32)   # many ties
    golds = [rng.choice(12, size=rng.integers(1, 5), replace=False) for _ in range(200)]
    ap = average_precision(gold_ranks(scores, pad_gold_lists(golds)))
    compared_with_sklearn = 0
    for row, gold in enumerate(golds):
        assert ap[row] == pytest.approx(_brute_force_ap(scores[row], gold), abs=1e-12)
        # sklearn (LAReQA's AP) scores a tie group as a whole; that is the same as ranking the
        # golds after tied non-golds whenever no two golds share a score
        if len(np.unique(scores[row, gold])) == len(gold):
            y_true = np.zeros(12)
            y_true[gold] = 1
            assert ap[row] == pytest.approx(
                sklearn_metrics.average_precision_score(y_true, scores[row]), abs=1e-12)
            compared_with_sklearn += 1
    assert compared_with_sklearn > 50


def test_queries_without_golds_are_nan_and_skipped() -> None:
    ranks = gold_ranks(np.array([[0.3, 0.2], [0.1, 0.9]]), np.array([[-1], [1]]))
    assert ranks.tolist() == [[-1], [1]]
    ap = average_precision(ranks)
    assert np.isnan(ap[0]) and ap[1] == 1.0
    assert mean_average_precision(ranks) == 1.0
    assert np.isnan(recall_at_k(ranks, 1)[0])


def test_chunked_ranks_equal_unchunked() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((37, 50)).astype(np.float32)
    golds = pad_gold_lists([rng.choice(50, size=rng.integers(0, 6), replace=False)
                            for _ in range(37)])
    whole = gold_ranks(scores, golds, chunk_elements=1 << 30)
    assert np.array_equal(whole, gold_ranks(scores, golds, chunk_elements=1))
    assert np.array_equal(whole, gold_ranks(scores, golds, chunk_elements=700))
    # against a plain argsort (no ties in continuous scores)
    order = np.argsort(-scores, axis=1)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(50)[None].repeat(37, 0), axis=1)
    expected = np.where(golds >= 0, np.take_along_axis(position, np.maximum(golds, 0), 1) + 1, -1)
    assert np.array_equal(whole, expected)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="same gold"):
        gold_ranks(np.zeros((1, 3)), np.array([[1, 1]]))
    with pytest.raises(ValueError, match="columns >= 3"):
        gold_ranks(np.zeros((1, 3)), np.array([[3]]))
    with pytest.raises(ValueError, match="NaN"):
        gold_ranks(np.array([[np.nan, 1.0]]), np.array([[0]]))
    with pytest.raises(ValueError, match="k is 0"):
        recall_at_k(np.array([[1]]), 0)


def test_cross_check_with_ranx() -> None:
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(7)
    n_queries, n_cands = 60, 80
    scores = rng.random((n_queries, n_cands))                   # continuous: no ties
    golds = [rng.choice(n_cands, size=rng.integers(1, 12), replace=False)
             for _ in range(n_queries)]
    ranks = gold_ranks(scores, pad_gold_lists(golds))
    qrels = ranx.Qrels({f"q{i:04d}": {f"c{j}": 1 for j in g} for i, g in enumerate(golds)})
    run = ranx.Run({f"q{i:04d}": {f"c{j}": float(scores[i, j]) for j in range(n_cands)}
                    for i in range(n_queries)})
    theirs = ranx.evaluate(qrels, run, ["map", "recall@1", "recall@10", "map@20"],
                           return_mean=False)
    np.testing.assert_allclose(average_precision(ranks), theirs["map"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(recall_at_k(ranks, 1), theirs["recall@1"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(recall_at_k(ranks, 10), theirs["recall@10"], rtol=0, atol=1e-9)
    # ranx's map@k divides by R, XTREME-R's by min(R, k): equal here since R <= 11 < 20
    np.testing.assert_allclose(average_precision_at_k(ranks, 20), theirs["map@20"], rtol=0,
                               atol=1e-9)
