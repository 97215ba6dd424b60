"""LAReQA-protocol evaluation of a dual encoder on the eval tables (``data/eval/<dataset>/``).

Inputs per dataset: ``questions.parquet`` (qid, group_id, lang, text, gold_cids) and
``candidates.parquet`` (cid, lang, text, context); questions sharing a ``group_id`` are
translations of each other, and a question's ``gold_cids`` are its answers *in its own language*.
Questions are encoded with the query prefix, candidates (their ``text`` only) with the passage
prefix; the score is the dot product of the L2-normalised embeddings (cosine). The encoder is a
pair of :data:`EncodeFn` (questions, candidates): :func:`hf_encode_fns` for an e5 folder, or
any other encoder with the same contract (``hybrid_retrieval.muse.encode_muse``, no prefixes).

Settings (Roy et al. 2020, LAReQA; the same as Elmahdy et al. 2024, arXiv 2408.10536):

* ``mono``: query in X, pool = the candidates in X, golds = the question's gold_cids.
* ``cross``: query in X, pool = the candidates in one other language Y, golds = the gold_cids
  of the parallel question in Y (same group_id); a query without a parallel question in Y is
  skipped for that pair. The full X x Y matrix is kept (diagonal = mono).
* ``multi``: query in X, pool = all candidates of all languages, golds = the gold_cids of every
  question of the group (one gold set per language that has the question): LAReQA's
  "language-agnostic" retrieval.

Metrics (definitions and tie policy in :mod:`hybrid_retrieval.retrieval_metrics`): mAP and
Recall@1 for mono and cross, mAP, mAP@20 (XTREME-R), Recall@10 and the rank distance (language
bias: worst minus best gold rank) for multi. Per language = mean over the queries in that
language (for cross: mean over the pool languages Y != X of the pair mAPs); the dataset value is
the macro average over languages (for cross: over all ordered pairs X != Y). ``multi`` also
reports ``map_micro``, the mean over all queries, which is what LAReQA's own code printed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa

from .config import distinct, invalid, param
from .encoder import encode_texts
from .errors import PipelineError
from .io import read_parquet
from .progress import progress_bar
from .retrieval_metrics import (average_precision, average_precision_at_k, gold_ranks, nan_mean,
                                pad_gold_lists, rank_distance, recall_at_k)
from .schemas import EVAL_CANDIDATES, EVAL_QUESTIONS

log = logging.getLogger(__name__)

#: Datasets the ``prepare_eval`` stage writes under ``data/eval/``.
KNOWN_DATASETS = ("xquad-r", "mlqa-r", "debian-faq-r", "debian-install-r")
#: How tables and figures name each dataset.
DATASET_TITLES = {"xquad-r": "XQuAD-R", "mlqa-r": "MLQA-R", "debian-faq-r": "Debian FAQ-R",
                  "debian-install-r": "Debian Install-R"}

MULTI_MAP_K = 20        # XTREME-R reports LAReQA as mAP@20
MULTI_RECALL_K = 10
PAIR_RECALL_K = 1
#: Queries scored per matrix product (a chunk of scores is queries x all candidates, float32).
QUERY_CHUNK = 1024

#: ``(texts, progress description) -> float32 (len(texts), dim)``: L2-normalised rows in input
#: order. Questions and candidates each get one (e5: with the query / passage prefix).
EncodeFn = Callable[[Sequence[str], str], np.ndarray]


# ---------------------------------------------------------------------------------------------
# Configuration (params.yaml: evaluate)
# ---------------------------------------------------------------------------------------------

class EvalPrecision(StrEnum):
    """``evaluate.precision`` (fp16 autocast is CUDA-only; not offered here)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


def _datasets(values: list[Any], where: str) -> list[Any]:
    if not values or not all(isinstance(d, str) for d in values):
        raise invalid(where, values, f"a non-empty list of names from {list(KNOWN_DATASETS)}")
    unknown = [d for d in values if d not in KNOWN_DATASETS]
    if unknown:
        path, name = where.rsplit(": ", 1)
        raise PipelineError(f"{path}: unknown dataset {unknown[0]!r} in {name}, expected some "
                            f"of {list(KNOWN_DATASETS)}")
    distinct(values, where)
    return values


def _device_name(value: str, where: str) -> str:
    if value not in ("auto", "cpu", "cuda") and not value.startswith("cuda:"):
        raise invalid(where, value, "'auto', 'cpu', 'cuda' or 'cuda:N'")
    return value


@dataclass(frozen=True)
class EvaluateConfig:
    """``params.yaml: evaluate``: what the evaluate stage scores, and how."""

    datasets: tuple[str, ...] = param(help=f"datasets of data/eval/ to score, from "
                                           f"{list(KNOWN_DATASETS)}", check=_datasets)
    query_prefix: str = param(help="text put before every question (e5: 'query: ')")
    passage_prefix: str = param(help="text put before every candidate (e5: 'passage: ')")
    max_length: int = param(help="tokens per text; longer texts are truncated", low=2)
    batch_tokens: int = param(help="padded tokens per forward pass", low=1)
    device: str = param(help="auto, cpu, cuda or cuda:N", check=_device_name)
    threads: int = param(help="torch CPU threads (0 = torch's default)", low=0)
    max_groups: int = param(help="0 = all; N > 0 = a seeded subset of whole paragraphs with >= "
                                 "N parallel question groups per dataset", low=0)
    subset_seed: int = param(help="seed of the max_groups subset")
    bootstrap_samples: int = param(help="group-bootstrap resamples per 95% CI (0 = none)",
                                   low=0)
    bootstrap_seed: int = param(help="seed of the bootstrap resamples")
    precision: EvalPrecision = param(EvalPrecision.AUTO, help="auto (bf16 where native and "
                                     "measured faster, else fp32), fp32 or bf16")


@dataclass
class EvalDataset:
    """One dataset's questions and candidates as plain columns, checked for consistency."""

    name: str
    qid: list[str]
    group_id: list[str]
    question_lang: list[str]
    question_text: list[str]
    gold_cids: list[list[str]]
    cid: list[str]
    candidate_lang: list[str]
    candidate_text: list[str]
    candidate_context: list[str] | None = None   # paragraph/section; used by subset_groups

    @property
    def languages(self) -> list[str]:
        return sorted(set(self.question_lang) | set(self.candidate_lang))


def load_eval_dataset(eval_dir: str | Path, name: str) -> EvalDataset:
    """Read and check ``eval_dir/name/{questions,candidates}.parquet``.

    Raises :class:`PipelineError` naming the file and the field for: an unknown dataset name,
    missing files or columns, duplicate qid/cid, two questions of one group in one language,
    a gold cid that is not a candidate, or a gold in another language than its question.
    """
    if name not in KNOWN_DATASETS:
        raise PipelineError(f"params.yaml: unknown dataset '{name}' in evaluate.datasets, "
                            f"expected some of {list(KNOWN_DATASETS)}")
    folder = Path(eval_dir) / name
    q_path, c_path = folder / "questions.parquet", folder / "candidates.parquet"
    questions = read_parquet(q_path, schema=EVAL_QUESTIONS).to_pydict()
    candidates = read_parquet(c_path, schema=EVAL_CANDIDATES).to_pydict()
    data = EvalDataset(
        name=name, qid=questions["qid"], group_id=questions["group_id"],
        question_lang=questions["lang"], question_text=questions["text"],
        gold_cids=questions["gold_cids"], cid=candidates["cid"],
        candidate_lang=candidates["lang"], candidate_text=candidates["text"],
        candidate_context=candidates["context"])
    if not data.qid:
        raise PipelineError(f"{q_path}: no questions")
    if not data.cid:
        raise PipelineError(f"{c_path}: no candidates")
    if (dup := _first_duplicate(data.qid)) is not None:
        raise PipelineError(f"{q_path}: column 'qid' repeats '{dup}', expected unique ids")
    if (dup := _first_duplicate(data.cid)) is not None:
        raise PipelineError(f"{c_path}: column 'cid' repeats '{dup}', expected unique ids")
    if (dup := _first_duplicate(list(zip(data.group_id, data.question_lang)))) is not None:
        raise PipelineError(f"{q_path}: two questions in lang '{dup[1]}' share group_id "
                            f"'{dup[0]}', expected at most one question per group and language")
    cand_lang = dict(zip(data.cid, data.candidate_lang))
    for qid, lang, golds in zip(data.qid, data.question_lang, data.gold_cids):
        for gold in golds:
            if gold not in cand_lang:
                raise PipelineError(f"{q_path}: question '{qid}' field gold_cids lists '{gold}', "
                                    f"which is not a cid of {c_path}")
            if cand_lang[gold] != lang:
                raise PipelineError(f"{q_path}: question '{qid}' (lang '{lang}') has gold "
                                    f"'{gold}' in lang '{cand_lang[gold]}'; gold_cids must be in "
                                    f"the question's language")
        if len(set(golds)) != len(golds):
            raise PipelineError(f"{q_path}: question '{qid}' field gold_cids repeats a cid")
    return data


def subset_groups(data: EvalDataset, max_groups: int, seed: int) -> EvalDataset:
    """A seeded subset of whole paragraphs: at least ``max_groups`` parallel question groups.

    Groups and the (language, context) paragraphs holding their golds form a graph; its
    connected components (a paragraph with all its questions, in every language) are taken
    in an order fixed by ``seed`` until ``max_groups`` groups are in. Kept: the questions of
    those groups and *all* candidates of their paragraphs, so each query still ranks its
    paragraph's other sentences (the hard negatives) but fewer paragraphs compete: metrics on
    a subset are higher than on the full set and comparable only with runs on the same subset.
    ``max_groups`` 0 (or at least the number of groups) returns ``data`` unchanged.
    """
    groups = sorted(set(data.group_id))
    if max_groups <= 0 or max_groups >= len(groups):
        return data
    if data.candidate_context is None:
        raise ValueError(f"{data.name}: subset_groups needs candidate_context")
    paragraph = {cid: (lang, ctx) for cid, lang, ctx in
                 zip(data.cid, data.candidate_lang, data.candidate_context)}
    parent: dict[Any, Any] = {}

    def find(node: Any) -> Any:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for group, golds in zip(data.group_id, data.gold_cids):
        for gold in golds:
            a, b = find(("group", group)), find(("paragraph", paragraph[gold]))
            if a != b:
                parent[a] = b
    members: dict[Any, list[str]] = {}
    for group in groups:
        members.setdefault(find(("group", group)), []).append(group)
    order = sorted(members.values(), key=lambda m: hashlib.sha256(
        f"{seed}:{data.name}:{min(m)}".encode()).hexdigest())
    kept_groups: set[str] = set()
    for component in order:
        if len(kept_groups) >= max_groups:
            break
        kept_groups.update(component)
    q_rows = [i for i, g in enumerate(data.group_id) if g in kept_groups]
    kept_paragraphs = {paragraph[gold] for i in q_rows for gold in data.gold_cids[i]}
    c_rows = [i for i, cid in enumerate(data.cid) if paragraph[cid] in kept_paragraphs]

    def pick(values: list, rows: list[int]) -> list:
        return [values[i] for i in rows]
    return EvalDataset(
        name=data.name, qid=pick(data.qid, q_rows), group_id=pick(data.group_id, q_rows),
        question_lang=pick(data.question_lang, q_rows),
        question_text=pick(data.question_text, q_rows),
        gold_cids=pick(data.gold_cids, q_rows), cid=pick(data.cid, c_rows),
        candidate_lang=pick(data.candidate_lang, c_rows),
        candidate_text=pick(data.candidate_text, c_rows),
        candidate_context=pick(data.candidate_context, c_rows))


def _first_duplicate(values: Sequence[Any]) -> Any:
    """The first value that occurs a second time, or None."""
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


@dataclass
class EncodedDataset:
    """Embeddings of one dataset (rows aligned with the dataset's questions / candidates)."""

    questions: np.ndarray
    candidates: np.ndarray
    seconds: float
    encoded_texts: int


def hf_encode_fns(model, tokenizer, *, query_prefix: str, passage_prefix: str, max_length: int,
                  batch_tokens: int, device: Any = "cpu") -> tuple[EncodeFn, EncodeFn]:
    """The (questions, candidates) :data:`EncodeFn` pair of an e5 encoder folder's model."""
    def encode_with(prefix: str) -> EncodeFn:
        return lambda texts, desc: encode_texts(model, tokenizer, texts, prefix=prefix,
                                                max_length=max_length, batch_tokens=batch_tokens,
                                                device=device, desc=desc)
    return encode_with(query_prefix), encode_with(passage_prefix)


def encode_dataset(encode_questions: EncodeFn, encode_candidates: EncodeFn,
                   data: EvalDataset) -> EncodedDataset:
    """Encode the questions and the candidate texts once each."""
    start = time.perf_counter()
    q = encode_questions(data.question_text, f"{data.name} questions")
    c = encode_candidates(data.candidate_text, f"{data.name} candidates")
    distinct = len(set(data.question_text)) + len(set(data.candidate_text))
    return EncodedDataset(q, c, time.perf_counter() - start, distinct)


@dataclass
class DatasetResult:
    """Summary metrics (setting -> metric -> value), per-language records, pair-matrix records."""

    summary: dict[str, dict[str, float | int | None]]
    per_language: list[dict[str, Any]] = field(default_factory=list)
    cross_matrix: list[dict[str, Any]] = field(default_factory=list)
    per_query: pa.Table | None = None
    retrieval_seconds: float = 0.0


def evaluate_dataset(data: EvalDataset, question_emb: np.ndarray, candidate_emb: np.ndarray,
                     *, query_chunk: int = QUERY_CHUNK) -> DatasetResult:
    """Score every question against every candidate (in query chunks) and compute the metrics.

    ``question_emb`` (questions, dim) and ``candidate_emb`` (candidates, dim) are L2-normalised
    rows aligned with ``data``. Identical candidate texts are scored once, so they tie exactly.
    """
    start = time.perf_counter()
    n_q, n_c = len(data.qid), len(data.cid)
    if question_emb.shape[0] != n_q or candidate_emb.shape[0] != n_c:
        raise ValueError(f"{data.name}: {question_emb.shape[0]} question and "
                         f"{candidate_emb.shape[0]} candidate embeddings for {n_q} questions "
                         f"and {n_c} candidates")
    langs = data.languages
    lang_id = {lang: i for i, lang in enumerate(langs)}
    q_lang = np.array([lang_id[x] for x in data.question_lang])
    c_lang = np.array([lang_id[x] for x in data.candidate_lang])

    # Score each distinct candidate text once and expand to all candidates by index, with the
    # score columns grouped by language so each language pool is a slice (a view, no copy).
    distinct: dict[str, int] = {}
    text_row = np.array([distinct.setdefault(t, i) for i, t in enumerate(data.candidate_text)])
    unique_rows = np.array(sorted(set(text_row.tolist())))
    unique_emb = np.ascontiguousarray(candidate_emb[unique_rows], dtype=np.float32)
    by_lang = np.argsort(c_lang, kind="stable")                  # score column -> candidate
    score_source = np.searchsorted(unique_rows, text_row)[by_lang]
    column = np.empty(n_c, dtype=np.int64)                        # candidate -> score column
    column[by_lang] = np.arange(n_c)
    bounds = np.searchsorted(c_lang[by_lang], np.arange(len(langs) + 1))
    pools = [slice(int(bounds[j]), int(bounds[j + 1])) for j in range(len(langs))]

    # Gold columns: in the whole score row (multi pool) and within each language's slice.
    cid_pos = {cid: i for i, cid in enumerate(data.cid)}
    gold_global = [column[[cid_pos[g] for g in golds]] if golds else np.zeros(0, np.int64)
                   for golds in data.gold_cids]
    by_group_lang = {(g, lang): i for i, (g, lang) in enumerate(zip(data.group_id, q_lang))}
    parallel = np.full((n_q, len(langs)), -1, dtype=np.int64)    # question of the group in Y
    for i, g in enumerate(data.group_id):
        for j in range(len(langs)):
            parallel[i, j] = by_group_lang.get((g, j), -1)
    multi_golds = pad_gold_lists([
        np.concatenate([gold_global[p] for p in parallel[i] if p >= 0]) for i in range(n_q)])
    pair_golds = [pad_gold_lists([gold_global[p] - bounds[j] if p >= 0 else []
                                  for p in parallel[:, j]]) for j in range(len(langs))]

    pair_ap = np.full((n_q, len(langs)), np.nan)
    pair_recall = np.full((n_q, len(langs)), np.nan)
    multi = {key: np.full(n_q, np.nan) for key in ("ap", "ap_k", "recall", "distance")}
    queries = np.ascontiguousarray(question_emb, dtype=np.float32)
    with progress_bar(n_q, unit="query", desc=f"{data.name} retrieval", leave=False) as bar:
        for lo in range(0, n_q, query_chunk):
            hi = min(n_q, lo + query_chunk)
            # (chunk, candidates), row-major: the rank counting runs along rows
            scores = np.take(queries[lo:hi] @ unique_emb.T, score_source, axis=1)
            ranks = gold_ranks(scores, multi_golds[lo:hi])
            multi["ap"][lo:hi] = average_precision(ranks)
            multi["ap_k"][lo:hi] = average_precision_at_k(ranks, MULTI_MAP_K)
            multi["recall"][lo:hi] = recall_at_k(ranks, MULTI_RECALL_K)
            multi["distance"][lo:hi] = rank_distance(ranks)
            for j, pool in enumerate(pools):
                ranks = gold_ranks(scores[:, pool], pair_golds[j][lo:hi])
                pair_ap[lo:hi, j] = average_precision(ranks)
                pair_recall[lo:hi, j] = recall_at_k(ranks, PAIR_RECALL_K)
            bar.update(hi - lo)

    result = _aggregate(data.name, langs, q_lang, pair_ap, pair_recall, multi)
    result.per_query = _per_query_table(data, langs, q_lang, pair_ap, pair_recall, multi)
    result.retrieval_seconds = time.perf_counter() - start
    return result


#: metrics/<name>_per_query.parquet: one row per (query, pool) with golds, for bootstrap CIs
#: (:mod:`hybrid_retrieval.bootstrap`: ``groups`` = group_id, ``strata`` = stratum).
PER_QUERY = pa.schema([
    pa.field("dataset", pa.string(), nullable=False), pa.field("qid", pa.string(), nullable=False),
    pa.field("group_id", pa.string(), nullable=False), pa.field("lang", pa.string(), nullable=False),
    pa.field("setting", pa.string(), nullable=False),
    pa.field("pool_lang", pa.string(), nullable=False),   # Y for mono/cross, "all" for multi
    pa.field("stratum", pa.string(), nullable=False),     # lang (mono, multi) or "X->Y" (cross)
    pa.field("ap", pa.float64(), nullable=False),
    pa.field("recall", pa.float64(), nullable=False),     # Recall@recall_k
    pa.field("recall_k", pa.int32(), nullable=False),
    pa.field("ap_at_20", pa.float64()),                   # multi only
    pa.field("rank_distance", pa.float64()),              # multi only, >= 2 golds
])


def _per_query_table(data: EvalDataset, langs: list[str], q_lang: np.ndarray,
                     pair_ap: np.ndarray, pair_recall: np.ndarray,
                     multi: dict[str, np.ndarray]) -> pa.Table:
    """Long table of per-query values (rows without golds left out), schema :data:`PER_QUERY`."""
    lang_names = np.array(langs, dtype=object)
    qid, group = np.array(data.qid, dtype=object), np.array(data.group_id, dtype=object)
    rows_q, cols = np.nonzero(~np.isnan(pair_ap))                    # (query, pool) pairs
    is_mono = q_lang[rows_q] == cols
    q_names, pool_names = lang_names[q_lang[rows_q]], lang_names[cols]
    pair_stratum = np.where(is_mono, q_names, q_names + "->" + pool_names)
    kept = np.flatnonzero(~np.isnan(multi["ap"]))
    multi_names = lang_names[q_lang[kept]]
    n_pair, n_multi = len(rows_q), len(kept)
    nan = np.full(n_pair, np.nan)
    columns = {
        "dataset": [data.name] * (n_pair + n_multi),
        "qid": np.concatenate([qid[rows_q], qid[kept]]).tolist(),
        "group_id": np.concatenate([group[rows_q], group[kept]]).tolist(),
        "lang": np.concatenate([q_names, multi_names]).tolist(),
        "setting": np.concatenate([np.where(is_mono, "mono", "cross"),
                                   np.full(n_multi, "multi")]).tolist(),
        "pool_lang": np.concatenate([pool_names, np.full(n_multi, "all", dtype=object)]).tolist(),
        "stratum": np.concatenate([pair_stratum, multi_names]).tolist(),
        "ap": np.concatenate([pair_ap[rows_q, cols], multi["ap"][kept]]),
        "recall": np.concatenate([pair_recall[rows_q, cols], multi["recall"][kept]]),
        "recall_k": np.concatenate([np.full(n_pair, PAIR_RECALL_K),
                                    np.full(n_multi, MULTI_RECALL_K)]).astype(np.int32),
        "ap_at_20": np.concatenate([nan, multi["ap_k"][kept]]),
        "rank_distance": np.concatenate([nan, multi["distance"][kept]]),
    }
    table = pa.table(columns)
    # NaN -> null for the multi-only columns, so "not applicable" is explicit
    for name in ("ap_at_20", "rank_distance"):
        values = table.column(name).to_numpy()
        table = table.set_column(table.schema.get_field_index(name), name,
                                 pa.array(values, mask=np.isnan(values)))
    return table.cast(PER_QUERY)


def _aggregate(name: str, langs: list[str], q_lang: np.ndarray, pair_ap: np.ndarray,
               pair_recall: np.ndarray, multi: dict[str, np.ndarray]) -> DatasetResult:
    """Per-language means, the X x Y matrix, and macro averages over languages / pairs."""
    n_langs = len(langs)
    matrix_ap = np.full((n_langs, n_langs), np.nan)
    matrix_recall = np.full((n_langs, n_langs), np.nan)
    matrix_n = np.zeros((n_langs, n_langs), dtype=np.int64)
    for x in range(n_langs):
        rows = q_lang == x
        for y in range(n_langs):
            matrix_ap[x, y] = nan_mean(pair_ap[rows, y])
            matrix_recall[x, y] = nan_mean(pair_recall[rows, y])
            matrix_n[x, y] = int((~np.isnan(pair_ap[rows, y])).sum())
    off_diagonal = ~np.eye(n_langs, dtype=bool)

    per_language: list[dict[str, Any]] = []
    cross_matrix: list[dict[str, Any]] = []
    for x, lang in enumerate(langs):
        rows = q_lang == x
        others = off_diagonal[x]
        per_language.append(_record(name, "mono", lang, {
            "map": matrix_ap[x, x], "recall@1": matrix_recall[x, x],
            "n_queries": matrix_n[x, x]}))
        per_language.append(_record(name, "cross", lang, {
            "map": nan_mean(matrix_ap[x, others]), "recall@1": nan_mean(matrix_recall[x, others]),
            "n_queries": int(matrix_n[x, others].sum())}))
        per_language.append(_record(name, "multi", lang, {
            "map": nan_mean(multi["ap"][rows]), f"map@{MULTI_MAP_K}": nan_mean(multi["ap_k"][rows]),
            f"recall@{MULTI_RECALL_K}": nan_mean(multi["recall"][rows]),
            "rank_distance": nan_mean(multi["distance"][rows]),
            "n_queries": int((~np.isnan(multi["ap"][rows])).sum())}))
        for y, pool_lang in enumerate(langs):
            cross_matrix.append({"dataset": name, "query_lang": lang, "pool_lang": pool_lang,
                                 "map": _clean(matrix_ap[x, y]),
                                 "recall@1": _clean(matrix_recall[x, y]),
                                 "n_queries": int(matrix_n[x, y])})

    def macro(setting: str, metric: str) -> float:
        return nan_mean(np.array([r[metric] if r[metric] is not None else np.nan
                                  for r in per_language if r["setting"] == setting]))

    summary = {
        "mono": {"map": macro("mono", "map"), "recall@1": macro("mono", "recall@1"),
                 "n_queries": int(np.trace(matrix_n))},
        "cross": {"map": nan_mean(matrix_ap[off_diagonal]),
                  "recall@1": nan_mean(matrix_recall[off_diagonal]),
                  "n_queries": int(matrix_n[off_diagonal].sum()),
                  "n_pairs": int((~np.isnan(matrix_ap[off_diagonal])).sum())},
        "multi": {"map": macro("multi", "map"), "map_micro": nan_mean(multi["ap"]),
                  f"map@{MULTI_MAP_K}": macro("multi", f"map@{MULTI_MAP_K}"),
                  f"recall@{MULTI_RECALL_K}": macro("multi", f"recall@{MULTI_RECALL_K}"),
                  "rank_distance": macro("multi", "rank_distance"),
                  "n_queries": int((~np.isnan(multi["ap"])).sum())},
    }
    summary = {s: {k: _clean(v) for k, v in metrics.items()} for s, metrics in summary.items()}
    return DatasetResult(summary, per_language, cross_matrix)


def _clean(value: Any) -> float | int | None:
    """JSON-safe number: NaN -> None, floats rounded to 6 decimals, ints kept."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


#: Every per-language record has all of these (null where a setting does not report one):
#: ``dvc plots`` renders a list of records only when they share their keys.
RECORD_METRICS = ("map", f"recall@{PAIR_RECALL_K}", f"map@{MULTI_MAP_K}",
                  f"recall@{MULTI_RECALL_K}", "rank_distance", "n_queries")


def _record(dataset: str, setting: str, lang: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """One per-language record; ``key`` (dataset/setting/lang) names its bar in the plot."""
    record = {"dataset": dataset, "setting": setting, "lang": lang,
              "key": f"{dataset}/{setting}/{lang}"}
    record.update({name: _clean(metrics[name]) if name in metrics else None
                   for name in RECORD_METRICS})
    return record


@dataclass
class EvaluationReport:
    """What the evaluate stage writes: metrics, per-language records, pair matrix, run info."""

    metrics: dict[str, Any]
    per_language: list[dict[str, Any]]
    cross_matrix: list[dict[str, Any]]
    per_query: pa.Table
    run: dict[str, Any]


def evaluate_encoder(model, tokenizer, datasets: Sequence[EvalDataset], *, query_prefix: str,
                     passage_prefix: str, max_length: int, batch_tokens: int,
                     device: Any = "cpu") -> EvaluationReport:
    """:func:`evaluate_encode_fns` with an e5 model's :func:`hf_encode_fns`."""
    return evaluate_encode_fns(*hf_encode_fns(
        model, tokenizer, query_prefix=query_prefix, passage_prefix=passage_prefix,
        max_length=max_length, batch_tokens=batch_tokens, device=device), datasets)


def evaluate_encode_fns(encode_questions: EncodeFn, encode_candidates: EncodeFn,
                        datasets: Sequence[EvalDataset]) -> EvaluationReport:
    """Encode each dataset once and evaluate it; timings go to ``run``, not into the metrics."""
    start = time.perf_counter()
    metrics: dict[str, Any] = {}
    per_language: list[dict[str, Any]] = []
    cross_matrix: list[dict[str, Any]] = []
    per_query: list[pa.Table] = []
    run: dict[str, Any] = {"datasets": {}}
    for data in datasets:
        encoded = encode_dataset(encode_questions, encode_candidates, data)
        result = evaluate_dataset(data, encoded.questions, encoded.candidates)
        metrics[data.name] = result.summary
        per_language += result.per_language
        cross_matrix += result.cross_matrix
        per_query.append(result.per_query)
        run["datasets"][data.name] = {
            "questions": len(data.qid), "candidates": len(data.cid),
            "languages": len(data.languages), "encoded_texts": encoded.encoded_texts,
            "encode_s": round(encoded.seconds, 2),
            "encoded_texts_per_s": round(encoded.encoded_texts / max(encoded.seconds, 1e-9), 1),
            "retrieval_s": round(result.retrieval_seconds, 2)}
        log.info("%s: mono mAP %.4f, cross mAP %.4f, multi mAP %.4f (encode %.1f s, retrieval "
                 "%.1f s)", data.name, result.summary["mono"]["map"] or math.nan,
                 result.summary["cross"]["map"] or math.nan,
                 result.summary["multi"]["map"] or math.nan, encoded.seconds,
                 result.retrieval_seconds)
    run["wall_s"] = round(time.perf_counter() - start, 2)
    return EvaluationReport(metrics, per_language, cross_matrix,
                            pa.concat_tables(per_query) if per_query else PER_QUERY.empty_table(),
                            run)
