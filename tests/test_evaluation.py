"""LAReQA evaluation on hand-built embeddings (exact expected mAPs) and the evaluate stage."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.bootstrap import bootstrap_ci
from hybrid_retrieval.evaluation import (PER_QUERY, EvalDataset, evaluate_dataset,
                                         load_eval_dataset, subset_groups)
from hybrid_retrieval.io import read_parquet, write_parquet
from hybrid_retrieval.schemas import EVAL_CANDIDATES, EVAL_QUESTIONS

ROOT = Path(__file__).resolve().parents[1]
LANGS = ["de", "en", "fr"]
GROUPS = 4


def synthetic(lang_weight: float, *, duplicate_en_gold: bool = False,
              drop: tuple[int, str] | None = None):
    """3 languages x 4 groups; embeddings topic axis + ``lang_weight`` * language axis.

    Score(question (g, X), candidate (h, Y)) is proportional to [g == h] + w^2 [X == Y].
    ``duplicate_en_gold`` adds a non-gold English candidate with the same text as the English
    answer of group 0; ``drop`` removes the question of one (group, language).
    """
    def vector(group: int, lang: str) -> np.ndarray:
        v = np.zeros(GROUPS + len(LANGS))
        v[group] = 1.0
        v[GROUPS + LANGS.index(lang)] = lang_weight
        return v / np.linalg.norm(v)

    q_rows, c_rows = [], []
    for lang in LANGS:
        for g in range(GROUPS):
            c_rows.append((f"{lang}-c{g}", lang, f"answer {g} in {lang}", vector(g, lang)))
            if drop != (g, lang):
                q_rows.append((f"{lang}-q{g}", f"g{g}", lang, f"question {g} in {lang}",
                               [f"{lang}-c{g}"], vector(g, lang)))
    if duplicate_en_gold:
        c_rows.append(("en-dup", "en", "answer 0 in en", vector(0, "en")))
    data = EvalDataset(
        name="xquad-r", qid=[r[0] for r in q_rows], group_id=[r[1] for r in q_rows],
        question_lang=[r[2] for r in q_rows], question_text=[r[3] for r in q_rows],
        gold_cids=[r[4] for r in q_rows], cid=[r[0] for r in c_rows],
        candidate_lang=[r[1] for r in c_rows], candidate_text=[r[2] for r in c_rows])
    q_emb = np.array([r[5] for r in q_rows], dtype=np.float32)
    c_emb = np.array([r[3] for r in c_rows], dtype=np.float32)
    return data, q_emb, c_emb


def by_lang(records, setting, metric):
    return {r["lang"]: r[metric] for r in records if r["setting"] == setting}


def test_aligned_embeddings_with_a_duplicate_candidate() -> None:
    # w^2 = 0.25: the topic dominates, so all golds lead the multilingual ranking, except for
    # the exact duplicate of the English gold of group 0, which ties with it and goes first.
    data, q, c = synthetic(0.5, duplicate_en_gold=True)
    result = evaluate_dataset(data, q, c, query_chunk=5)
    s = result.summary
    # mono: only the en query of group 0 is hurt (gold at rank 2)
    assert by_lang(result.per_language, "mono", "map") == {"de": 1.0, "en": 0.875, "fr": 1.0}
    assert s["mono"]["map"] == pytest.approx(2.875 / 3, abs=1e-6)
    assert s["mono"]["recall@1"] == pytest.approx(2.75 / 3, abs=1e-6)
    # cross: pairs X -> en lose 0.5 on group 0
    matrix = {(r["query_lang"], r["pool_lang"]): r["map"] for r in result.cross_matrix}
    assert matrix[("de", "en")] == matrix[("fr", "en")] == 0.875
    assert matrix[("en", "de")] == matrix[("fr", "de")] == matrix[("en", "fr")] == 1.0
    assert matrix[("en", "en")] == 0.875                       # diagonal = mono
    assert s["cross"]["map"] == pytest.approx(5.75 / 6, abs=1e-6)
    assert s["cross"]["n_pairs"] == 6 and s["cross"]["n_queries"] == 24
    # multi: en q0 golds at ranks 2, 3, 4 -> 23/36; de/fr q0 at 1, 3, 4 -> 29/36; others 1
    multi = by_lang(result.per_language, "multi", "map")
    assert multi["en"] == pytest.approx(131 / 144, abs=1e-6)
    assert multi["de"] == multi["fr"] == pytest.approx(137 / 144, abs=1e-6)
    assert s["multi"]["map"] == pytest.approx(405 / 432, abs=1e-6)
    assert s["multi"]["map_micro"] == pytest.approx(405 / 432, abs=1e-6)
    assert s["multi"]["map@20"] == s["multi"]["map"]          # all golds within the top 20
    assert s["multi"]["recall@10"] == 1.0
    distance = by_lang(result.per_language, "multi", "rank_distance")
    assert distance == {"en": 2.0, "de": 2.25, "fr": 2.25}
    assert s["multi"]["rank_distance"] == pytest.approx(6.5 / 3, abs=1e-6)
    assert s["multi"]["n_queries"] == 12


def test_language_biased_embeddings_fail_only_the_multilingual_pool() -> None:
    # w^2 = 4: same-language non-answers outrank the answers in other languages.
    data, q, c = synthetic(2.0)
    result = evaluate_dataset(data, q, c)
    s = result.summary
    assert s["mono"]["map"] == 1.0 and s["cross"]["map"] == 1.0
    assert s["mono"]["recall@1"] == 1.0 and s["cross"]["recall@1"] == 1.0
    # golds at ranks 1, 5, 6 for every query
    assert s["multi"]["map"] == pytest.approx((1 + 2 / 5 + 3 / 6) / 3, abs=1e-6)
    assert s["multi"]["map@20"] == pytest.approx((1 + 2 / 5 + 3 / 6) / 3, abs=1e-6)
    assert s["multi"]["recall@10"] == 1.0
    assert s["multi"]["rank_distance"] == 5.0
    assert set(by_lang(result.per_language, "multi", "rank_distance").values()) == {5.0}


def test_missing_parallel_question_is_skipped_in_cross_and_multi() -> None:
    data, q, c = synthetic(0.5, drop=(3, "fr"))
    result = evaluate_dataset(data, q, c)
    s = result.summary
    assert s["mono"]["n_queries"] == 11
    assert s["cross"]["n_queries"] == 20                      # 4+4 (en<->de) + 4 * 3 with fr
    counts = {(r["query_lang"], r["pool_lang"]): r["n_queries"] for r in result.cross_matrix}
    assert counts[("en", "fr")] == counts[("fr", "en")] == 3 and counts[("en", "de")] == 4
    # group 3 en/de queries: golds en, de only; the fr answer (no fr question) is a non-gold
    # that ties with the de gold at score 1 and goes first -> ranks 1 and 3 -> AP 5/6
    multi = by_lang(result.per_language, "multi", "map")
    assert multi["en"] == multi["de"] == pytest.approx(23 / 24, abs=1e-6)
    assert multi["fr"] == 1.0
    assert s["multi"]["map"] == pytest.approx(70 / 72, abs=1e-6)
    assert s["multi"]["map_micro"] == pytest.approx(32 / 33, abs=1e-6)


def test_results_do_not_depend_on_row_order() -> None:
    data, q, c = synthetic(0.5, duplicate_en_gold=True, drop=(3, "fr"))
    expected = evaluate_dataset(data, q, c)
    rng = np.random.default_rng(0)
    qp, cp = rng.permutation(len(data.qid)), rng.permutation(len(data.cid))
    take = lambda values, order: [values[i] for i in order]
    shuffled = EvalDataset(
        data.name, take(data.qid, qp), take(data.group_id, qp), take(data.question_lang, qp),
        take(data.question_text, qp), take(data.gold_cids, qp), take(data.cid, cp),
        take(data.candidate_lang, cp), take(data.candidate_text, cp))
    result = evaluate_dataset(shuffled, q[qp], c[cp], query_chunk=4)
    assert result.summary == expected.summary
    assert result.per_language == expected.per_language
    assert result.cross_matrix == expected.cross_matrix


def test_per_query_table_reproduces_the_macro_averages() -> None:
    data, q, c = synthetic(0.5, duplicate_en_gold=True, drop=(3, "fr"))
    result = evaluate_dataset(data, q, c)
    table = result.per_query.to_pydict()
    assert result.per_query.schema.equals(PER_QUERY)
    for setting in ("mono", "cross", "multi"):
        rows = [i for i, s in enumerate(table["setting"]) if s == setting]
        values = np.array([table["ap"][i] for i in rows])
        groups = np.array([table["group_id"][i] for i in rows])
        strata = np.array([table["stratum"][i] for i in rows])
        ci = bootstrap_ci(values, groups, strata, resamples=50)
        assert ci.estimate == pytest.approx(result.summary[setting]["map"], abs=1e-6)
        assert ci.low <= ci.estimate <= ci.high
    multi = [i for i, s in enumerate(table["setting"]) if s == "multi"]
    assert {table["pool_lang"][i] for i in multi} == {"all"}
    assert all(table["rank_distance"][i] is not None for i in multi)
    assert all(table["ap_at_20"][i] is None for i, s in enumerate(table["setting"])
               if s != "multi")
    assert {"en->de", "de->en", "en"} <= set(table["stratum"])


def test_subset_keeps_whole_paragraphs_of_a_seeded_set_of_groups() -> None:
    data, _, _ = synthetic(0.5)
    # two paragraphs per language: groups 0-1 in one, 2-3 in the other
    data.candidate_context = [f"{lang}-para{int(cid[-1]) // 2}"
                              for cid, lang in zip(data.cid, data.candidate_lang)]
    assert subset_groups(data, 0, seed=1) is data and subset_groups(data, 4, seed=1) is data
    sub = subset_groups(data, 1, seed=1)
    kept = sorted(set(sub.group_id))
    assert kept in (["g0", "g1"], ["g2", "g3"])                # a whole paragraph, both groups
    assert len(sub.qid) == 2 * 3 and len(sub.cid) == 2 * 3
    assert {c[-1] for c in sub.cid} == {k[-1] for k in kept}
    assert subset_groups(data, 1, seed=1) == sub                # seeded: same subset
    others = {tuple(sorted(set(subset_groups(data, 1, seed=s).group_id))) for s in range(20)}
    assert len(others) == 2                                     # the seed picks the paragraph
    assert sorted(set(subset_groups(data, 3, seed=1).group_id)) == ["g0", "g1", "g2", "g3"]


# ----------------------------------------------------------------------------- files and stage

def write_eval_folder(root: Path, name: str = "xquad-r") -> Path:
    data, _, _ = synthetic(0.5, duplicate_en_gold=True)
    folder = root / name
    write_parquet(pa.table({"qid": data.qid, "group_id": data.group_id,
                            "lang": data.question_lang, "text": data.question_text,
                            "gold_cids": data.gold_cids}), folder / "questions.parquet",
                  schema=EVAL_QUESTIONS)
    write_parquet(pa.table({"cid": data.cid, "lang": data.candidate_lang,
                            "text": data.candidate_text,
                            "context": ["ctx"] * len(data.cid)}), folder / "candidates.parquet",
                  schema=EVAL_CANDIDATES)
    return root


EVALUATE_PARAMS = {"datasets": ["xquad-r"], "query_prefix": "query: ",
                   "passage_prefix": "passage: ", "max_length": 64, "batch_tokens": 512,
                   "device": "cpu", "threads": 1, "max_groups": 0, "subset_seed": 13,
                   "bootstrap_samples": 200, "bootstrap_seed": 13}


def write_params(path: Path, **overrides) -> Path:
    path.write_text(yaml.safe_dump({"evaluate": {**EVALUATE_PARAMS, **overrides}}))
    return path


@pytest.fixture(scope="module")
def stage_module():
    spec = importlib.util.spec_from_file_location("evaluate_stage", ROOT / "stages/evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stage_args(tmp_path: Path, encoder: Path, params: Path) -> list[str]:
    return ["--params", str(params), "--encoder", str(encoder), "--eval-dir",
            str(tmp_path / "eval"), "--out", str(tmp_path / "m/base.json"),
            "--plots-out", str(tmp_path / "m/per_lang.json"),
            "--cross-out", str(tmp_path / "m/cross.json"),
            "--per-query-out", str(tmp_path / "m/per_query.parquet")]


def test_load_eval_dataset_round_trip(tmp_path: Path) -> None:
    write_eval_folder(tmp_path)
    data = load_eval_dataset(tmp_path, "xquad-r")
    assert data.languages == LANGS and len(data.qid) == 12 and len(data.cid) == 13


def test_evaluate_stage_end_to_end(tmp_path: Path, tiny_encoder_dir: Path,
                                   stage_module, capsys) -> None:
    write_eval_folder(tmp_path / "eval")
    params = write_params(tmp_path / "params.yaml")
    stage_module.main(stage_args(tmp_path, tiny_encoder_dir, params))
    metrics = json.loads((tmp_path / "m/base.json").read_text())
    assert set(metrics) == {"xquad-r", "run", "bootstrap"}
    assert set(metrics["xquad-r"]) == {"mono", "cross", "multi"}
    assert set(metrics["xquad-r"]["multi"]) == {"map", "map_micro", "map@20", "recall@10",
                                                "rank_distance", "n_queries", "ci"}
    for setting in metrics["xquad-r"].values():
        for key, value in setting.items():
            if key.startswith(("map", "recall")):
                assert 0.0 <= value <= 1.0, (key, value)
        for key, ci in setting["ci"].items():                   # every headline metric
            assert ci["low"] <= setting[key] <= ci["high"], (key, ci)
    assert set(metrics["xquad-r"]["multi"]["ci"]) == {"map", "map@20", "recall@10",
                                                      "rank_distance"}
    assert metrics["bootstrap"]["resamples"] == 200 and metrics["bootstrap"]["seed"] == 13
    assert metrics["xquad-r"]["multi"]["rank_distance"] >= 2    # 3 golds: at least 2 apart
    run = metrics["run"]
    assert run["datasets"]["xquad-r"]["encoded_texts"] == 12 + 12   # the duplicate encoded once
    assert run["datasets"]["xquad-r"]["encoded_texts_per_s"] > 0
    # wall_s is rounded to 10 ms, so a fast machine may print 0.0 for this tiny set
    assert run["wall_s"] >= run["datasets"]["xquad-r"]["encode_s"] >= 0
    assert run["device"] == "cpu" and run["threads"] == 1
    records = json.loads((tmp_path / "m/per_lang.json").read_text())
    assert len(records) == 3 * 3
    assert {r["setting"] for r in records} == {"mono", "cross", "multi"}
    assert all(set(r) == set(records[0]) for r in records)     # dvc plots needs equal keys
    assert {"dataset", "setting", "lang", "key", "map", "n_queries"} <= set(records[0])
    cross = json.loads((tmp_path / "m/cross.json").read_text())
    assert len(cross) == 9 and all(0 <= r["map"] <= 1 for r in cross)
    per_query = read_parquet(tmp_path / "m/per_query.parquet", schema=PER_QUERY)
    assert per_query.num_rows == 12 + 24 + 12                  # mono + cross pairs + multi
    assert "evaluate:" in capsys.readouterr().out


def _assert_stage_error(stage_module, tmp_path, encoder, params, pattern):
    with pytest.raises(PipelineError, match=pattern):
        stage_module.main(stage_args(tmp_path, encoder, params))
    assert not (tmp_path / "m").exists()


def test_stage_missing_encoder_folder(tmp_path, stage_module) -> None:
    write_eval_folder(tmp_path / "eval")
    _assert_stage_error(stage_module, tmp_path, tmp_path / "models/base_encoder",
                        write_params(tmp_path / "p.yaml"), r"base_encoder.*convert_encoder")


def test_stage_questions_missing_column(tmp_path, tiny_encoder_dir, stage_module) -> None:
    write_eval_folder(tmp_path / "eval")
    path = tmp_path / "eval/xquad-r/questions.parquet"
    import pyarrow.parquet as pq
    pq.write_table(pq.read_table(path).drop_columns(["gold_cids"]), path)
    _assert_stage_error(stage_module, tmp_path, tiny_encoder_dir,
                        write_params(tmp_path / "p.yaml"), r"questions.parquet.*'gold_cids'")


@pytest.mark.parametrize("overrides, pattern", [
    ({"datasets": ["xquad-r", "squad-r"]}, r"unknown dataset 'squad-r'"),
    ({"datasets": []}, r"evaluate.datasets"),
    ({"max_length": 0}, r"evaluate.max_length"),
    ({"max_length": 100_000}, r"at most 512 tokens"),
    ({"batch_tokens": 0}, r"evaluate.batch_tokens"),
    ({"query_prefix": None}, r"evaluate.query_prefix"),
    ({"device": "tpu"}, r"evaluate.device"),
    ({"max_groups": -1}, r"evaluate.max_groups"),
    ({"bootstrap_samples": "many"}, r"evaluate.bootstrap_samples"),
])
def test_stage_bad_params(tmp_path, tiny_encoder_dir, stage_module, overrides, pattern) -> None:
    write_eval_folder(tmp_path / "eval")
    _assert_stage_error(stage_module, tmp_path, tiny_encoder_dir,
                        write_params(tmp_path / "p.yaml", **overrides), pattern)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda q: q.update(gold_cids=[["nope"]] + q["gold_cids"][1:]), r"'nope'.*not a cid"),
    (lambda q: q.update(gold_cids=[["en-c0"]] + q["gold_cids"][1:]), r"gold 'en-c0' in lang"),
    (lambda q: q.update(qid=["de-q1"] + q["qid"][1:]), r"'qid' repeats 'de-q1'"),
    (lambda q: q.update(lang=["en"] + q["lang"][1:]), r"share group_id 'g0'"),
])
def test_load_eval_dataset_rejects_inconsistent_tables(tmp_path, mutate, pattern) -> None:
    write_eval_folder(tmp_path)
    q_path = tmp_path / "xquad-r/questions.parquet"
    import pyarrow.parquet as pq
    questions = pq.read_table(q_path).to_pydict()
    mutate(questions)
    write_parquet(pa.table(questions), q_path, schema=EVAL_QUESTIONS)
    with pytest.raises(PipelineError, match=pattern):
        load_eval_dataset(tmp_path, "xquad-r")


def test_stage_cli_reports_one_error_line(tmp_path: Path) -> None:
    params = write_params(tmp_path / "p.yaml", datasets=["nope-r"])
    proc = subprocess.run([sys.executable, str(ROOT / "stages/evaluate.py"), "--params",
                           str(params), "--out", str(tmp_path / "out.json")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "unknown dataset 'nope-r'" in proc.stderr
    assert not (tmp_path / "out.json").exists()
