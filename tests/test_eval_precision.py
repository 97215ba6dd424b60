"""evaluate.precision: bf16 autocast encoding gives the fp32 metrics (within bf16's rounding),
is recorded in the run info, and a bad value is one error naming the parameter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from test_evaluation import stage_args, stage_module, write_eval_folder, write_params  # noqa: F401

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.precision import probe_hardware


def run_stage_with(stage_module, tmp_path: Path, encoder: Path, **overrides) -> dict:  # noqa: F811
    params = write_params(tmp_path / "params.yaml", bootstrap_samples=0, **overrides)
    args = stage_args(tmp_path, encoder, params)
    stage_module.main(args)
    return json.loads(Path(args[args.index("--out") + 1]).read_text())


def test_bf16_matches_fp32_and_is_recorded(tmp_path, tiny_encoder_dir, stage_module):  # noqa: F811
    write_eval_folder(tmp_path / "eval")
    fp32 = run_stage_with(stage_module, tmp_path, tiny_encoder_dir, precision="fp32")
    bf16 = run_stage_with(stage_module, tmp_path, tiny_encoder_dir, precision="bf16")
    assert fp32["run"]["precision"] == "fp32" and bf16["run"]["precision"] == "bf16"
    for setting in ("mono", "cross", "multi"):
        assert bf16["xquad-r"][setting]["map"] == pytest.approx(fp32["xquad-r"][setting]["map"],
                                                               abs=0.05)
    auto = run_stage_with(stage_module, tmp_path, tiny_encoder_dir, precision="auto")
    probe = probe_hardware(torch.device("cpu"))
    assert auto["run"]["precision"] == ("bf16" if probe.bf16_faster else "fp32")
    # The machine facts of every run block (issue 12): ISA, CPU, native bf16, probe, versions.
    assert auto["run"]["isa"] == torch.backends.cpu.get_cpu_capability()
    assert auto["run"]["bf16_native"] == probe.bf16_native
    assert auto["run"]["bf16_speedup"] == probe.bf16_speedup > 0
    assert auto["run"]["versions"]["torch"] == torch.__version__
    assert auto["run"]["cpu"]


def test_bad_precision_names_the_param(tmp_path, tiny_encoder_dir, stage_module):  # noqa: F811
    write_eval_folder(tmp_path / "eval")
    with pytest.raises(PipelineError, match="evaluate.precision"):
        run_stage_with(stage_module, tmp_path, tiny_encoder_dir, precision="fp16")
