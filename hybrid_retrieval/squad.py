"""SQuAD v1.1 reader: questions with the sentence that contains their answer.

The answer sentence is the passage side of a training pair, mirroring the LAReQA evaluation,
where candidates are sentences and the gold is the sentence containing ``answer_start``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .config import param
from .errors import PipelineError
from .io import read_json
from .schemas import SQUAD_TRAIN
from .text import normalize_text, sentence_index, sentence_spans

log = logging.getLogger(__name__)


def _field(obj: Any, key: str, kind: type, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise PipelineError(f"{path}: missing field '{where}.{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PipelineError(f"{path}: field '{where}.{key}' is {type(value).__name__}, "
                            f"expected {kind.__name__}")
    return value


def read_squad(path: str | Path) -> pa.Table:
    """Read a SQuAD v1.1 JSON file into a table with schema :data:`schemas.SQUAD_TRAIN`.

    Each question keeps its first answer. ``answer_sentence`` is the sentence (blingfire) of the
    paragraph that contains ``answer_start``. Structural errors raise :class:`PipelineError`
    naming the file and the JSON path of the bad field (e.g. ``data[3].paragraphs[0].context``).
    """
    path = Path(path)
    doc = read_json(path)
    articles = _field(doc, "data", list, path, "$")
    columns: dict[str, list] = {name: [] for name in SQUAD_TRAIN.names}
    for a, article in enumerate(articles):
        where_a = f"data[{a}]"
        title = _field(article, "title", str, path, where_a)
        for p, paragraph in enumerate(_field(article, "paragraphs", list, path, where_a)):
            where_p = f"{where_a}.paragraphs[{p}]"
            context = _field(paragraph, "context", str, path, where_p)
            spans = sentence_spans(context)
            for q, qa in enumerate(_field(paragraph, "qas", list, path, where_p)):
                where_q = f"{where_p}.qas[{q}]"
                answers = _field(qa, "answers", list, path, where_q)
                if not answers:
                    raise PipelineError(f"{path}: field '{where_q}.answers' is empty, "
                                        f"expected at least one answer")
                start = _field(answers[0], "answer_start", int, path, f"{where_q}.answers[0]")
                if not 0 <= start < len(context):
                    raise PipelineError(
                        f"{path}: field '{where_q}.answers[0].answer_start' is {start}, "
                        f"expected a position in the {len(context)}-character context")
                s = sentence_index(spans, start)
                columns["id"].append(_field(qa, "id", str, path, where_q))
                columns["title"].append(title)
                columns["question"].append(_field(qa, "question", str, path, where_q).strip())
                columns["answer_text"].append(
                    _field(answers[0], "text", str, path, f"{where_q}.answers[0]"))
                columns["answer_start"].append(start)
                columns["context"].append(context)
                columns["answer_sentence"].append(context[spans[s][0]:spans[s][1]])
    if not columns["id"]:
        raise PipelineError(f"{path}: no questions found, expected SQuAD v1.1 data")
    return pa.table(columns, schema=SQUAD_TRAIN)


@dataclass(frozen=True)
class SubsetConfig:
    """``params.yaml: prepare``: the seeded subset of SQuAD train (:func:`sample_questions`)."""

    max_questions: int = param(help="questions kept (0 = all 87,599)", low=0)
    seed: int = param(help="seed of the subset")


def sample_questions(table: pa.Table, max_questions: int, seed: int) -> pa.Table:
    """A seeded random subset of ``max_questions`` rows, in file order (0 keeps every row)."""
    if max_questions <= 0 or max_questions >= table.num_rows:
        return table
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(table.num_rows, size=max_questions, replace=False))
    return table.take(pa.array(keep))


def titles(path: str | Path) -> set[str]:
    """The article titles of a SQuAD file (for the train/dev disjointness check)."""
    path = Path(path)
    return {_field(a, "title", str, path, f"data[{i}]")
            for i, a in enumerate(_field(read_json(path), "data", list, path, "$"))}


def _articles(path: Path) -> tuple[set[str], set[str]]:
    """Titles and normalised paragraph contexts of a SQuAD file."""
    names, contexts = set(), set()
    for a, article in enumerate(_field(read_json(path), "data", list, path, "$")):
        names.add(_field(article, "title", str, path, f"data[{a}]"))
        for p, paragraph in enumerate(_field(article, "paragraphs", list, path, f"data[{a}]")):
            context = _field(paragraph, "context", str, path, f"data[{a}].paragraphs[{p}]")
            contexts.add(normalize_text(context))
    contexts.discard("")
    return names, contexts


def assert_disjoint(train_path: str | Path, dev_path: str | Path) -> None:
    """Fail if the train file shares an article with the dev file (XQuAD, an evaluation set, is
    built from SQuAD *dev*): no title in common, and no paragraph in common (after Unicode and
    whitespace normalisation), so that a renamed article is caught too."""
    train_path, dev_path = Path(train_path), Path(dev_path)
    train_titles, train_contexts = _articles(train_path)
    dev_titles, dev_contexts = _articles(dev_path)
    shared = sorted(train_titles & dev_titles)
    if shared:
        raise PipelineError(f"{train_path}: {len(shared)} articles also in SQuAD dev {dev_path} "
                            f"(e.g. {shared[:3]}), expected none")
    shared = sorted(train_contexts & dev_contexts)
    if shared:
        raise PipelineError(f"{train_path}: {len(shared)} paragraphs also in SQuAD dev "
                            f"{dev_path} (e.g. {shared[0][:80]!r}), expected none")
