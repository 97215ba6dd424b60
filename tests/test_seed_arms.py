"""Multi-seed arms: seed-averaged metric with a question bootstrap, and the spread over seeds."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.evaluation import PER_QUERY
from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.seed_arms import arm_scores, headline_scores, seed_interval


def _table(scores: dict[str, list[float]], order=None) -> pa.Table:
    rows = [(f"{lang}:{i}", str(i), lang, v) for lang, vs in scores.items()
            for i, v in enumerate(vs)]
    if order is not None:
        rows = [rows[i] for i in order]
    return pa.table({"dataset": ["xquad-r"] * len(rows), "setting": ["multi"] * len(rows),
                     "qid": [r[0] for r in rows], "group_id": [r[1] for r in rows],
                     "lang": [r[2] for r in rows], "ap_at_20": [r[3] for r in rows]})


SETTINGS = BootstrapSettings(resamples=200, seed=1)


def test_seed_average_and_spread_per_language_and_group() -> None:
    seed0 = _table({"ar": [1.0, 0.0, 1.0, 0.0], "hi": [0.5, 0.5, 0.5, 0.5]})
    seed1 = _table({"ar": [0.0, 0.0, 1.0, 1.0], "hi": [1.0, 1.0, 1.0, 1.0]}, order=[7, 6, 5, 4,
                                                                                 3, 2, 1, 0])
    scores = arm_scores([seed0, seed1], "xquad-r", {"ar": ["ar"], "hi": ["hi"],
                                                    "both": ["ar", "hi"], "th": ["th"]}, SETTINGS)
    assert set(scores) == {"ar", "hi", "both"}  # th: no such queries, no row
    assert scores["ar"].estimate == pytest.approx(0.5) and scores["ar"].seed_sd == 0.0
    assert scores["hi"].estimate == pytest.approx(0.75)  # seeds 0.5 and 1.0, aligned by qid
    assert scores["hi"].seed_sd == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert scores["both"].estimate == pytest.approx((0.5 + 0.75) / 2)  # macro over languages
    assert scores["both"].seeds == 2 and scores["both"].queries == 8
    assert scores["ar"].low <= scores["ar"].estimate <= scores["ar"].high
    assert scores["hi"].low == pytest.approx(0.75) == scores["hi"].high  # no spread in averages


def test_seeds_must_hold_the_same_questions() -> None:
    with pytest.raises(PipelineError, match="seed 1 of the arm has other xquad-r multi queries"):
        arm_scores([_table({"ar": [1.0, 0.0]}), _table({"ar": [1.0]})], "xquad-r",
                   {"ar": ["ar"]}, SETTINGS)


def test_average_per_query_means_the_metric_columns_over_seeds() -> None:
    from hybrid_retrieval.headline import HEADLINE
    from hybrid_retrieval.seed_arms import average_per_query

    def per_query(ap: list[float]) -> pa.Table:
        n = len(ap)
        columns = {"dataset": ["xquad-r"] * n, "qid": [f"q{i}" for i in range(n)],
                   "group_id": [str(i) for i in range(n)], "lang": ["ar"] * n,
                   "setting": ["multi"] * n, "pool_lang": ["all"] * n, "stratum": ["ar"] * n}
        for column in {h.column for h in HEADLINE}:
            columns[column] = ap
        return pa.table(columns)

    mean = average_per_query([per_query([1.0, 0.0, 0.5]), per_query([0.0, 0.0, 1.0])])
    assert mean.column("ap").to_pylist() == [0.5, 0.0, 0.75]
    assert mean.column("qid").to_pylist() == ["q0", "q1", "q2"]
    with pytest.raises(PipelineError, match="a paired comparison needs the same"):
        average_per_query([per_query([1.0]), per_query([1.0, 0.0])])


def _pairs(values: dict[tuple[str, str], list[float]]) -> pa.Table:
    """Full PER_QUERY rows of the cross setting: (query lang, pool lang) -> AP per group."""
    rows = [{"dataset": "xquad-r", "qid": f"{q}:{i}", "group_id": str(i), "lang": q,
             "setting": "cross", "pool_lang": p, "stratum": f"{q}-{p}", "ap": v, "recall": v,
             "recall_k": 1, "ap_at_20": None, "rank_distance": None}
            for (q, p), vs in values.items() for i, v in enumerate(vs)]
    return pa.Table.from_pylist(rows, schema=PER_QUERY)


def test_headline_scores_macro_average_over_pairs_like_eval_json() -> None:
    seed0 = _pairs({("ar", "en"): [1.0, 0.0], ("en", "ar"): [0.5, 0.5], ("hi", "en"): [0.0, 0.0]})
    seed1 = _pairs({("ar", "en"): [1.0, 1.0], ("en", "ar"): [0.5, 0.5], ("hi", "en"): [1.0, 1.0]})
    scores = headline_scores([seed0, seed1], "xquad-r", SETTINGS)
    assert set(scores) == {"cross map", "cross recall@1"}    # no mono / multi rows here
    cross = scores["cross map"]
    # pairs ar-en 0.75, en-ar 0.5, hi-en 0.5 after averaging the seeds: macro 0.5833
    assert cross.estimate == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert cross.seed_mean == pytest.approx(cross.estimate)
    assert cross.seed_sd == pytest.approx(np.std([(0.5 + 0.5 + 0.0) / 3, (1 + 0.5 + 1) / 3],
                                                 ddof=1))
    ar_en = headline_scores([seed0, seed1], "xquad-r", SETTINGS, languages=["ar", "en"])
    assert ar_en["cross map"].estimate == pytest.approx((0.75 + 0.5) / 2)  # hi-en left out


def test_seed_interval_is_a_t_interval_over_the_seeds_differences() -> None:
    from scipy.stats import t as student
    mean, low, high = seed_interval([-0.03, -0.02, -0.025])
    assert mean == pytest.approx(-0.025)
    half = student.ppf(0.975, 2) * np.std([-0.03, -0.02, -0.025], ddof=1) / np.sqrt(3)
    assert (low, high) == pytest.approx((-0.025 - half, -0.025 + half))
    assert high < 0                                   # three seeds agreeing closely
    assert seed_interval([-0.03, None]) is None       # one seed: no interval
