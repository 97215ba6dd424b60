"""Issue 8.6: a params file that cannot fit in memory fails early, naming the param.

``train`` and ``evaluate`` estimate their peak memory from the encoder's config.json and weight
files before they load any data or model (:mod:`hybrid_retrieval.resources`) and stop with one
error line naming ``train.batch_size`` / ``evaluate.batch_tokens`` when the estimate exceeds the
available memory (``MemAvailable``; the free GPU memory on CUDA).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.evaluation import KNOWN_DATASETS
from hybrid_retrieval.resources import (GIB, EncoderShape, available_memory,
                                        check_inference_memory, check_training_memory,
                                        training_memory)
from reliability_support import expect_error, run_stage, tiny_params, write_params

CPU = torch.device("cpu")

#: multilingual-e5-small as converted by convert_encoder (models/base_encoder).
E5_SMALL = EncoderShape(hidden=384, intermediate=1536, layers=12, heads=12, vocab=250037,
                        weight_bytes=470_045_872, max_tokens=512)


def test_the_estimate_of_the_default_run_is_in_the_range_of_its_real_peak() -> None:
    """params.yaml's train section (batch 32 x 64 tokens, word embeddings frozen) on e5-small:
    2.5 GB estimated; the real train process runs at about 3.6 GB RSS with ~0.5 GB of
    libraries and the data. Batch and length scale it as expected."""
    estimate = training_memory(E5_SMALL, batch_size=32, max_length=64,
                               freeze_word_embeddings=True)
    assert 2.0e9 < estimate["total"] < 3.6e9
    assert estimate["weights"] == E5_SMALL.weight_bytes
    double = training_memory(E5_SMALL, batch_size=64, max_length=64, freeze_word_embeddings=True)
    assert double["activations"] == 2 * estimate["activations"]
    unfrozen = training_memory(E5_SMALL, batch_size=32, max_length=64,
                               freeze_word_embeddings=False)
    assert unfrozen["optimizer"] == 3 * E5_SMALL.weight_bytes > estimate["optimizer"]
    assert available_memory(CPU) > 0


def test_the_check_compares_with_the_available_memory(tiny_encoder_dir: Path) -> None:
    kwargs = {"batch_size": 32, "max_length": 64, "freeze_word_embeddings": True,
              "encoder": tiny_encoder_dir, "device": CPU}
    needed = check_training_memory(**kwargs, available=64 * GIB)["total"]
    with pytest.raises(PipelineError, match=r"'train.batch_size' is 32 \(with 'train.max_length' "
                                            r"64\): one training step would need about"):
        check_training_memory(**kwargs, available=needed - 1)
    with pytest.raises(PipelineError, match=r"'evaluate.batch_tokens' is 1000000"):
        check_inference_memory(batch_tokens=10 ** 6, max_length=64, encoder=tiny_encoder_dir,
                               device=CPU, available=10 ** 6)
    # No config.json: nothing to estimate (the model loader reports the folder).
    assert check_training_memory(**{**kwargs, "encoder": tiny_encoder_dir.parent / "none"},
                                 available=1) is None


def test_train_with_an_absurd_batch_size_fails_in_seconds(tiny_pipeline: Path,
                                                          tiny_encoder_dir: Path,
                                                          tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml",
                          tiny_params(tiny_encoder_dir, train__batch_size=10 ** 6))
    args = ["--params", params, "--shards", tiny_pipeline / "data/shards/parallel",
            "--shards", tiny_pipeline / "data/shards/domain",
            "--shards", tiny_pipeline / "data/shards/ntrex",
            "--base-encoder", tiny_pipeline / "models/base_encoder",
            "--out", tmp_path / "encoder", "--live", tmp_path / "dvclive",
            "--checkpoints", tmp_path / "checkpoints"]
    for name in KNOWN_DATASETS:
        for kind in ("questions", "candidates"):
            args += ["--forbidden", tiny_pipeline / f"data/eval/{name}/{kind}.parquet"]
    started = time.perf_counter()
    run = run_stage("train.py", *args)
    seconds = time.perf_counter() - started
    expect_error(run, "'train.batch_size' is 1000000 (with 'train.max_length' 32): one training "
                      "step would need about", "GiB is available on cpu; expected a smaller "
                      "train.batch_size or train.max_length",
                 outputs=(tmp_path / "encoder", tmp_path / "dvclive", tmp_path / "checkpoints"))
    assert seconds < 30


def test_evaluate_with_absurd_batch_tokens_fails_before_loading(tiny_pipeline: Path,
                                                                tiny_encoder_dir: Path,
                                                                tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml",
                          tiny_params(tiny_encoder_dir, evaluate__batch_tokens=10 ** 10))
    out = tmp_path / "metrics/eval.json"
    started = time.perf_counter()
    run = run_stage("evaluate.py", "--params", params,
                    "--encoder", tiny_pipeline / "models/encoder",
                    "--eval-dir", tmp_path / "not-read-yet", "--out", out,
                    "--plots-out", tmp_path / "metrics/per_language.json",
                    "--cross-out", tmp_path / "metrics/cross.json")
    expect_error(run, "'evaluate.batch_tokens' is 10000000000: encoding batches of that many "
                      "tokens with", "expected a smaller evaluate.batch_tokens",
                 outputs=(out, tmp_path / "metrics/per_language.json"))
    assert time.perf_counter() - started < 30
    # The tiny pipeline's own settings pass the same check.
    settings = json.loads(json.dumps(tiny_params(tiny_encoder_dir)["evaluate"]))
    assert check_inference_memory(batch_tokens=settings["batch_tokens"],
                                  max_length=settings["max_length"],
                                  encoder=tiny_pipeline / "models/encoder", device=CPU)
