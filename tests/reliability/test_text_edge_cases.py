"""Issue 8.1, text edge cases: empty strings, very long inputs, right-to-left and CJK text, emoji,
control and NUL characters and invalid (lone) surrogates go through reading, translation,
tokenisation, training and evaluation without crashing; very long inputs are truncated, with a
warning that gives the count (and a count in the stage's stats / summary).

Where each case is handled:

* raw JSON (:func:`hybrid_retrieval.io.read_json`): a lone ``\\udXXX`` escape becomes U+FFFD, so
  no later step sees a string that is not valid UTF-8 (Parquet cannot even store one);
* translation (:func:`hybrid_retrieval.translation.translate_texts`): lone surrogates become
  U+FFFD before sentence splitting, a sentence longer than ``MAX_SEGMENT_CHARS`` (4,096) is cut
  (warning + ``truncated_segments`` in ``data/translated/<lang>.stats.json``);
* training (:func:`hybrid_retrieval.training.tokenize`, ``count_truncated``): texts longer than
  ``train.max_length`` tokens are cut (warning + ``truncated_queries`` / ``truncated_passages``
  in the summary, ``models/encoder/training.json`` and dvclive's metrics);
* evaluation (:func:`hybrid_retrieval.encoder.encode_texts`): cut at ``evaluate.max_length``
  (warning with the count); tests/test_encoder.py ``test_encode_texts_odd_strings_do_not_crash``
  checks the embeddings of such strings one by one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from hybrid_retrieval import squad
from hybrid_retrieval.encoder import load_encoder
from hybrid_retrieval.evaluation import EvalDataset, evaluate_encoder
from hybrid_retrieval.schemas import SHARD, SQUAD_TRAIN
from hybrid_retrieval.shards import pair_kind, write_shards
from hybrid_retrieval.encoder import count_truncated, tokenize
from hybrid_retrieval.training import TrainConfig, train
from hybrid_retrieval.translation import MAX_SEGMENT_CHARS, translate_squad, translate_texts
from reliability_support import tiny_params

EDGE_TEXTS = {
    "empty": "",
    "blank": " \t\n\u00a0",
    "arabic": "ما هي عاصمة فرنسا؟ باريس هي عاصمة فرنسا.",
    "hebrew_marks": "\u200fמהי בירת צרפת?\u200e Paris.",
    "cjk": "法国的首都是什么？巴黎是法国的首都。日本語の文。한국어 문장.",
    "emoji": "I love pizza 🍕🍕, cats 🐱 and 👩‍👩‍👧 families 🇵🇹!",
    "control": "Bell\x07 escape\x1b delete\x7f next\u0085line\x0bvertical.",
    "nul": "A NUL\x00 inside. And a second sentence.",
    "surrogates": "Lone \ud800 high and \udfff low surrogates.",
    "combining": "Cafe\u0301 with e\u0301\u0301\u0301 stacked accents.",
    "long_words": "word " * 20_000,                       # 100,000 characters, no sentence end
    "long_cjk": "猫" * 50_000,
}
LONG = ("long_words", "long_cjk")


def test_raw_json_with_lone_surrogate_escapes_is_read_as_valid_text(tmp_path: Path) -> None:
    """The only way a lone surrogate gets into the pipeline: a ``\\ud800`` escape in raw JSON."""
    context = "Paris \\ud800 is the capital. Emoji \\ud83d\\ude00 stay."
    doc = ('{"version": "1.1", "data": [{"title": "T\\udfff", "paragraphs": [{"context": "'
           + context + '", "qas": [{"id": "q1", "question": "Where\\u0000 \\ud800?", '
           '"answers": [{"answer_start": 0, "text": "Paris"}]}]}]}]}')
    path = tmp_path / "train.json"
    path.write_text(doc, encoding="utf-8")
    row = squad.read_squad(path).to_pylist()[0]
    for value in row.values():
        if isinstance(value, str):
            value.encode("utf-8")  # valid UTF-8 everywhere
    assert "\ufffd" in row["question"] and "\x00" in row["question"]
    assert "😀" in row["context"] and row["title"].startswith("T\ufffd")


def test_translation_takes_every_edge_case(caplog) -> None:
    """Bergamot (the real offline engine) on every case; the long ones are cut and counted."""
    from hybrid_retrieval.translation import BergamotEngine

    engine = BergamotEngine("en", "pt", threads=2)
    texts = list(EDGE_TEXTS.values())
    with caplog.at_level(logging.WARNING, logger="hybrid_retrieval.translation"):
        out, report = translate_texts(engine, texts, desc="edge")
    assert len(out) == len(texts) and all(isinstance(t, str) for t in out)
    by_case = dict(zip(EDGE_TEXTS, out))
    assert by_case["empty"] == "" and by_case["blank"] == ""
    assert "pizza" in by_case["emoji"] and by_case["surrogates"]
    for text in out:
        text.encode("utf-8")
    assert report.truncated_segments == 2
    # 100,000 characters in, the translation of the first 4,096 out (not of all of them)
    assert len(by_case["long_words"]) < len(EDGE_TEXTS["long_words"]) / 4
    assert f"edge: 2 distinct segments longer than {MAX_SEGMENT_CHARS} characters were " \
           f"truncated before translation" in caplog.text

    # The translate stage's function: stats carry the count, the script check copes.
    n = len(EDGE_TEXTS)
    table = pa.table({"id": [f"q{i}" for i in range(n)],
                      "title": ["Title_" + k for k in EDGE_TEXTS],
                      "question": [t.replace("\ud800", "?").replace("\udfff", "?")
                                   for t in EDGE_TEXTS.values()],
                      "answer_text": ["x"] * n, "answer_start": pa.array([0] * n, pa.int32()),
                      "context": ["c"] * n,
                      "answer_sentence": list(reversed([t.replace("\ud800", "?")
                                                        .replace("\udfff", "?")
                                                        for t in EDGE_TEXTS.values()]))},
                     schema=SQUAD_TRAIN)
    result, stats = translate_squad(table, engine)
    assert result.num_rows == n and stats["truncated_segments"] == 2
    assert 0.0 <= stats["bad_share"] <= 1.0


@pytest.fixture(scope="module")
def tiny(tiny_encoder_dir: Path):
    return load_encoder(tiny_encoder_dir)


def test_training_tokenisation_takes_every_edge_case(tiny) -> None:
    _, tokenizer = tiny
    texts = list(EDGE_TEXTS.values())
    batch = tokenize(tokenizer, texts, "query: ", 32, torch.device("cpu"))
    assert batch["input_ids"].shape[0] == len(texts) and batch["input_ids"].shape[1] <= 32
    assert batch["attention_mask"].sum(dim=1).min() >= 2  # at least the special tokens
    truncated = count_truncated(tokenizer, texts, "query: ", 32)
    assert 2 <= truncated < len(texts)


def _edge_shards(folder: Path) -> Path:
    """Shards whose texts are the edge cases (surrogates as U+FFFD: Parquet holds UTF-8 only),
    mixed with ordinary pairs so that batches can be formed."""
    rows, cases = [], [t.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd")
                       for t in EDGE_TEXTS.values()]
    for i in range(24):
        special = cases[i % len(cases)]
        for q in ("en", "pt"):
            for p in ("en", "pt"):
                rows.append({"pair_id": f"id{i}", "query_lang": q, "passage_lang": p,
                             "query": f"{q} {special} {i}" if i < len(cases) else f"{q} q {i}?",
                             "passage": f"{p} {special} #{i}" if i < len(cases) else f"{p} {i}.",
                             "source": "qa", "kind": pair_kind(q, p)})
    write_shards(pa.Table.from_pylist(rows, schema=SHARD), folder, rows_per_shard=100)
    return folder


def test_training_on_edge_case_texts_warns_and_counts_truncation(tiny_encoder_dir: Path,
                                                                 tmp_path: Path, caplog) -> None:
    config = TrainConfig.from_params(tiny_params(tiny_encoder_dir, train__steps=3))
    with caplog.at_level(logging.WARNING, logger="hybrid_retrieval.training"):
        result = train(config, [_edge_shards(tmp_path / "shards")], tiny_encoder_dir, None)
    summary = result.summary
    assert np.isfinite(summary["final_loss"])
    assert summary["truncated_queries"] >= 2 * 2 and summary["truncated_passages"] >= 2 * 2
    assert (f"{summary['truncated_queries']} of 48 distinct queries and "
            f"{summary['truncated_passages']} of 48 distinct passages are longer than "
            f"train.max_length=32 tokens and are truncated") in caplog.text


def test_evaluation_takes_every_edge_case(tiny, caplog) -> None:
    """Every case as a question and as a candidate, in two languages, one group per case."""
    model, tokenizer = tiny
    cases = list(EDGE_TEXTS.items())
    qid, group, q_lang, q_text, golds, cid, c_lang, c_text = ([] for _ in range(8))
    for lang in ("en", "ar"):
        for i, (name, text) in enumerate(cases):
            qid.append(f"{lang}:q{i}")
            group.append(name)
            q_lang.append(lang)
            q_text.append(text)
            golds.append([f"{lang}:c{i}"])
            cid.append(f"{lang}:c{i}")
            c_lang.append(lang)
            c_text.append(text[::-1] if name not in LONG else text)
    data = EvalDataset(name="xquad-r", qid=qid, group_id=group, question_lang=q_lang,
                       question_text=q_text, gold_cids=golds, cid=cid, candidate_lang=c_lang,
                       candidate_text=c_text)
    with caplog.at_level(logging.WARNING, logger="hybrid_retrieval.encoder"):
        report = evaluate_encoder(model, tokenizer, [data], query_prefix="query: ",
                                  passage_prefix="passage: ", max_length=32, batch_tokens=256)
    summary = report.metrics["xquad-r"]
    for setting in ("mono", "cross", "multi"):
        assert 0.0 <= summary[setting]["map"] <= 1.0
    assert "distinct texts were longer than max_length=32 tokens and were truncated" \
        in caplog.text
    json.dumps(report.metrics)  # serialisable as the stage writes it
