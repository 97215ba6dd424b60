"""Arrow schemas of every table the pipeline writes (the data contracts of DESIGN.md).

Each table is written with :func:`hybrid_retrieval.io.write_parquet`, which checks it against
its schema here and stores ``SCHEMA_VERSION`` in the Parquet metadata.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, kind, nullable=False) for name, kind in fields])


#: data/squad/train.parquet: one row per SQuAD v1.1 train question.
SQUAD_TRAIN = _schema(
    ("id", pa.string()), ("title", pa.string()), ("question", pa.string()),
    ("answer_text", pa.string()), ("answer_start", pa.int32()), ("context", pa.string()),
    ("answer_sentence", pa.string()))

#: data/eval/<dataset>/questions.parquet: ``group_id`` is shared by parallel questions;
#: ``gold_cids`` are the candidate ids of the correct answers (in the question's language).
EVAL_QUESTIONS = _schema(
    ("qid", pa.string()), ("group_id", pa.string()), ("lang", pa.string()),
    ("text", pa.string()), ("gold_cids", pa.list_(pa.string())))

#: data/eval/<dataset>/candidates.parquet: one row per candidate (a sentence or a passage);
#: ``context`` is the paragraph or section it comes from.
EVAL_CANDIDATES = _schema(
    ("cid", pa.string()), ("lang", pa.string()), ("text", pa.string()), ("context", pa.string()))

#: data/translated/<lang>.parquet: SQuAD train translated into one language.
TRANSLATED = _schema(
    ("id", pa.string()), ("lang", pa.string()), ("question", pa.string()),
    ("answer_sentence", pa.string()), ("title", pa.string()),
    ("question_sha1", pa.string()), ("answer_sentence_sha1", pa.string()),
    ("engine", pa.string()), ("model", pa.string()))

#: data/domain/pairs.parquet: pseudo query/passage pairs from the Debian Reference.
DOMAIN_PAIRS = _schema(
    ("id", pa.string()), ("query_lang", pa.string()), ("passage_lang", pa.string()),
    ("query", pa.string()), ("passage", pa.string()), ("method", pa.string()),
    ("doc", pa.string()), ("section", pa.string()))

#: data/shards/{parallel,domain}/part-NNNNN.parquet: training pairs.
SHARD = _schema(
    ("pair_id", pa.string()), ("query_lang", pa.string()), ("passage_lang", pa.string()),
    ("query", pa.string()), ("passage", pa.string()), ("source", pa.string()),
    ("kind", pa.string()))
