"""Issue 8.5: the leakage guard. No evaluation question or gold sentence (XQuAD-R, MLQA-R,
Debian FAQ-R; exact match after Unicode NFKC and whitespace normalisation) may be in a training
shard (checked by ``train``, :func:`hybrid_retrieval.leakage.assert_no_leakage`), and no SQuAD
*dev* article (XQuAD's source) may be in the training data (checked by ``prepare_squad``,
:func:`hybrid_retrieval.squad.assert_disjoint`: no title and no paragraph in common).

Also tested elsewhere: tests/test_shards.py ``test_assert_no_leakage`` (normalisation),
tests/test_training.py ``test_leakage_guard_stops_the_stage`` (a planted shard text, through
the stage), tests/test_domain.py ``test_assert_clean_fires_on_a_planted_row`` and
``test_build_drops_and_counts_a_planted_leak`` (Debian FAQ-R texts in the domain data: exact,
contained and containing matches, checked by ``prepare_domain`` and ``build_domain_shards``).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from hybrid_retrieval import sources, squad
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.evaluation import KNOWN_DATASETS
from hybrid_retrieval.shards import read_shards, write_shards
from reliability_support import MIRROR, ROOT, expect_error, run_stage, tiny_params, write_params


def test_dvc_yaml_passes_every_evaluation_table_to_the_train_guard() -> None:
    """The guard only sees what dvc.yaml gives it: every question and candidate table of every
    evaluation set, with data/eval a dependency of train (so a new eval set reruns it)."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]
    args = shlex.split(stage["cmd"])
    forbidden = {args[i + 1] for i, arg in enumerate(args) if arg == "--forbidden"}
    expected = {f"data/eval/{name}/{table}.parquet" for name in KNOWN_DATASETS
                for table in ("questions", "candidates")}
    assert forbidden == expected
    assert "data/eval" in stage["deps"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["eval_data"]["datasets"]) == set(KNOWN_DATASETS)


def _eval_texts(workspace: Path, dataset: str) -> tuple[str, str]:
    """A question of ``dataset`` and its gold sentence/passage (from prepare_eval's tables)."""
    questions = pq.read_table(workspace / f"data/eval/{dataset}/questions.parquet").to_pylist()
    candidates = pq.read_table(workspace / f"data/eval/{dataset}/candidates.parquet")
    text_by_cid = dict(zip(candidates.column("cid").to_pylist(),
                           candidates.column("text").to_pylist()))
    question = questions[len(questions) // 2]
    return question["text"], text_by_cid[question["gold_cids"][0]]


def _variant(text: str, how: str) -> str:
    """The same text as the normaliser sees it, written differently."""
    if how == "spaces":
        return "  " + text.replace(" ", " \u00a0\t", 2) + "\n"
    if how == "fullwidth":  # NFKC folds full-width letters and digits
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text[:12]) + \
            text[12:]
    return text


@pytest.mark.slow
@pytest.mark.parametrize("dataset, side, how", [
    ("xquad-r", "question", "spaces"),
    ("xquad-r", "gold", "fullwidth"),
    ("mlqa-r", "gold", "spaces"),
    ("mlqa-r", "question", "same"),
    ("debian-faq-r", "question", "fullwidth"),
    ("debian-faq-r", "gold", "same"),
])
def test_a_planted_evaluation_text_stops_training(dataset: str, side: str, how: str,
                                                  tiny_pipeline: Path, tiny_encoder_dir: Path,
                                                  tmp_path: Path) -> None:
    question, gold = _eval_texts(tiny_pipeline, dataset)
    planted = _variant(question if side == "question" else gold, how)
    column = "query" if side == "question" else "passage"
    table = read_shards(tiny_pipeline / "data/shards/parallel")
    rows = table.to_pylist()
    rows[7][column] = planted
    shards = tmp_path / "parallel"
    write_shards(table.from_pylist(rows, schema=table.schema), shards, rows_per_shard=50)

    args = ["--params", write_params(tmp_path / "params.yaml", tiny_params(tiny_encoder_dir)),
            "--shards", shards, "--shards", tiny_pipeline / "data/shards/domain",
            "--shards", tiny_pipeline / "data/shards/ntrex",
            "--base-encoder", tiny_pipeline / "models/base_encoder",
            "--out", tmp_path / "encoder", "--live", tmp_path / "dvclive"]
    for name in KNOWN_DATASETS:
        for kind in ("questions", "candidates"):
            args += ["--forbidden", tiny_pipeline / f"data/eval/{name}/{kind}.parquet"]
    run = run_stage("train.py", *args)
    shown = " ".join((question if side == "question" else gold).split())
    expect_error(run, f"{shards}: evaluation texts in the training data, expected none: "
                      f"1 rows in column '{column}'", shown[:40],
                 outputs=(tmp_path / "encoder", tmp_path / "dvclive"))


@pytest.fixture(scope="module")
def squad_dev() -> dict:
    return json.loads((MIRROR / "squad-v1.1/dev-v1.1.json").read_text(encoding="utf-8"))


def _squad_file(path: Path, articles: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")
    return path


def _article(title: str, context: str) -> dict:
    return {"title": title, "paragraphs": [{"context": context, "qas": [
        {"id": f"{title}-q", "question": "What?", "answers": [{"answer_start": 0,
                                                              "text": context[:5]}]}]}]}


def test_real_squad_train_and_dev_share_no_article() -> None:
    squad.assert_disjoint(MIRROR / "squad-v1.1/train-v1.1.json",
                          MIRROR / "squad-v1.1/dev-v1.1.json")


def test_a_dev_article_in_train_is_found_by_title_or_by_paragraph(squad_dev: dict,
                                                                  tmp_path: Path) -> None:
    dev = _squad_file(tmp_path / "dev.json", squad_dev["data"][:3])
    context = squad_dev["data"][1]["paragraphs"][4]["context"]
    same_title = _squad_file(tmp_path / "a.json", [
        _article("Vikings", "The Vikings were a people."),
        _article(squad_dev["data"][2]["title"], "A new text on an old title.")])
    with pytest.raises(PipelineError, match=r"a.json: 1 articles also in SQuAD dev .*dev.json "
                                            r"\(e.g. \['Normans'\]\), expected none"):
        squad.assert_disjoint(same_title, dev)
    renamed = _squad_file(tmp_path / "b.json", [
        _article("Renamed", "  " + context.replace(" ", "\u00a0", 3) + " ")])
    with pytest.raises(PipelineError, match=r"b.json: 1 paragraphs also in SQuAD dev .* "
                                            r"expected none"):
        squad.assert_disjoint(renamed, dev)


def test_prepare_squad_stops_on_a_dev_article(squad_dev: dict, tmp_path: Path,
                                              tiny_encoder_dir: Path, monkeypatch) -> None:
    """Through the stage: a mirror whose train file holds a dev article (its checksums
    registered for the test, so that the disjointness check is what stops it)."""
    mirror = tmp_path / "mirror"
    train = _squad_file(mirror / "squad-v1.1/train-v1.1.json",
                        [_article("Vikings", "The Vikings were a people."), squad_dev["data"][5]])
    dev = _squad_file(mirror / "squad-v1.1/dev-v1.1.json", squad_dev["data"])
    sums = {**sources.checksums(),
            **{f"squad-v1.1/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
               for p in (train, dev)}}
    monkeypatch.setattr(sources, "checksums", lambda: sums)
    out = tmp_path / "squad/train.parquet"
    params = write_params(tmp_path / "params.yaml", tiny_params(
        tiny_encoder_dir, data={"mirror": str(mirror), "download_dir": str(tmp_path / "dl")}))
    run = run_stage("prepare_squad.py", "--params", params, "--out", out)
    expect_error(run, "train-v1.1.json: 1 articles also in SQuAD dev",
                 f"(e.g. ['{squad_dev['data'][5]['title']}']), expected none", outputs=(out,))
