"""Issue 8.4: two runs of the tiny pipeline give byte-identical outputs and identical metrics.

``tiny_pipeline`` and ``tiny_pipeline_again`` are two independent ``dvc repro`` runs of the whole
pipeline (every stage of dvc.yaml) in two different folders with the same params
(:func:`reliability_support.tiny_params`). DVC's own md5 of every output (dvc.lock ``outs``) is
compared: shards, SQuAD/translation/evaluation tables, domain pairs, model folders (the trained
``model.safetensors`` included), per-query Parquet, plots. Metrics files are compared value by
value, to the last digit, after removing the wall-clock fields (``seconds``, ``*_s``,
``*_per_second``, ``*_per_step``, ``*_speedup``), the only fields that differ.

What makes it so:

* every random choice is seeded from params: ``seed`` (training: sampler, dropout, torch/numpy/
  python RNGs), ``prepare.seed`` (SQuAD subset), ``domain.seed`` (ICT queries, blake2b-based,
  not Python's salted ``hash``), ``mt_quality.seed``;
* every table is written in a fixed row order (sorted by ids / language pairs) with fixed
  Parquet settings (zstd, row-group size, no timestamps); JSON with sorted keys;
* translation: Bergamot decodes greedily, sentence by sentence, so ``translate.threads`` does
  not change the output; the cache is keyed by model hash and decoding options;
* training on CPU with ``train.device: cpu``, ``train.torch_threads: 1`` (one fixed reduction
  order) and ``train.precision: fp32`` (the tiny params; ``test_bf16_training_is_repeatable``
  shows that bf16 autocast, which ``precision: auto`` picks on this CPU, repeats bit for bit too);
* evaluation is inference only with fixed batches (``evaluate.batch_tokens``), and ties in the
  rankings are broken by a fixed rule (tests/test_retrieval_metrics.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from hybrid_retrieval.schemas import SHARD
from hybrid_retrieval.shards import pair_kind, write_shards
from hybrid_retrieval.stage_deps import load_stages
from hybrid_retrieval.training import TrainConfig, train
from reliability_support import lock_outs, tiny_params, tree_digest


def is_timing(key: str) -> bool:
    """A wall-clock field of a metrics file (differs between any two runs); ``bf16_speedup`` is
    the precision probe's measured fp32/bf16 time ratio."""
    return key in ("seconds", "wall_s") or key.endswith(("_s", "_per_second", "_per_step",
                                                         "_speedup"))


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if not is_timing(k)}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def metric_files(workspace: Path) -> set[str]:
    """Every ``metrics:`` file of the workspace's dvc.yaml (``foreach`` stages expanded, as DVC
    does, with the workspace's params.yaml)."""
    return {path for stage in load_stages(workspace / "dvc.yaml", expand=True)
            for path in stage.metrics}


@pytest.mark.slow
def test_two_runs_give_identical_outputs_and_metrics(tiny_pipeline: Path,
                                                     tiny_pipeline_again: tuple[Path, Path]):
    first, (second, _) = tiny_pipeline, tiny_pipeline_again
    outs_first, outs_second = lock_outs(first), lock_outs(second)
    assert outs_first.keys() == outs_second.keys()
    assert len(outs_first) >= 15  # every stage of dvc.yaml ran
    metrics = metric_files(first)
    assert {"data/translated/pt.stats.json", "dvclive/metrics.json", "metrics/mt.json"} <= metrics

    differing = sorted(key for key in outs_first if outs_first[key] != outs_second[key])
    for key in differing:
        path = key.split(":", 1)[1]
        assert path in metrics, f"{key}: output differs between two runs"
        a = json.loads((first / path).read_text())
        b = json.loads((second / path).read_text())
        assert without_timing(a) == without_timing(b), f"{path}: metrics differ between runs"
        assert a != without_timing(a), f"{path}: differs without holding timings"

    # The training data, by name: byte-identical shards and the same trained weights.
    for folder in ("data/shards/parallel", "data/shards/domain"):
        assert tree_digest(first / folder) == tree_digest(second / folder)
        assert len(tree_digest(first / folder)) >= 2
    assert tree_digest(first / "models/encoder/model.safetensors") == \
        tree_digest(second / "models/encoder/model.safetensors")
    assert tree_digest(first / "models/encoder") == tree_digest(second / "models/encoder")


def _shards(folder: Path) -> Path:
    rows = []
    for i in range(24):
        for q in ("en", "pt"):
            for p in ("en", "pt"):
                rows.append({"pair_id": f"id{i}", "query_lang": q, "passage_lang": p,
                             "query": f"{q} question {i} about the capital?",
                             "passage": f"{p} answer number {i} is Paris, the city.",
                             "source": "qa", "kind": pair_kind(q, p)})
    write_shards(pa.Table.from_pylist(rows, schema=SHARD), folder, rows_per_shard=40)
    return folder


@pytest.mark.parametrize("precision", ["bf16"])
def test_bf16_training_is_repeatable(precision: str, tiny_encoder_dir: Path, tmp_path: Path):
    """``precision: auto`` is bf16 on a CPU with native bf16: also bit-for-bit repeatable
    with ``torch_threads: 1``."""
    shards = _shards(tmp_path / "shards")
    params = tiny_params(tiny_encoder_dir, train__precision=precision, train__steps=4)
    config = TrainConfig.from_params(params)
    runs = [train(config, [shards], tiny_encoder_dir, None).model.state_dict() for _ in range(2)]
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert np.isfinite(float(next(iter(runs[0].values())).float().sum()))
