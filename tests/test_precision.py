"""The precision resolver on both kinds of CPU (issue 12), with the hardware probe mocked: ``auto``
is bf16 only where bf16 is native *and* measured faster; a forced bf16 on an AVX2 CPU warns
with the measured cost; the probe itself runs on whatever CPU the tests meet."""

from __future__ import annotations

import logging

import pytest
import torch

from hybrid_retrieval import precision as precision_module
from hybrid_retrieval.precision import (MIN_BF16_SPEEDUP, HardwareProbe, autocast, machine_facts,
                                        probe_hardware, resolve_precision)

CPU = torch.device("cpu")
AVX512_BF16 = HardwareProbe("cpu", "AVX512", bf16_native=True, bf16_speedup=3.2)
AVX2 = HardwareProbe("cpu", "AVX2", bf16_native=False, bf16_speedup=0.16)
# A CPU that says bf16 is native but is not faster at it (e.g. oneDNN capped at AVX2).
NATIVE_BUT_SLOW = HardwareProbe("cpu", "AVX512", bf16_native=True, bf16_speedup=0.9)


@pytest.mark.parametrize("probe, expected", [(AVX512_BF16, "bf16"), (AVX2, "fp32"),
                                             (NATIVE_BUT_SLOW, "fp32")])
def test_auto_resolves_per_machine(probe, expected):
    assert resolve_precision("auto", CPU, probe) == expected


@pytest.mark.parametrize("probe", [AVX512_BF16, AVX2])
@pytest.mark.parametrize("asked", ["fp32", "bf16"])
def test_explicit_precision_is_kept(probe, asked):
    assert resolve_precision(asked, CPU, probe) == asked


def test_forced_bf16_without_native_support_warns_with_the_measured_cost(caplog):
    with caplog.at_level(logging.WARNING, logger="hybrid_retrieval.precision"):
        assert resolve_precision("bf16", CPU, AVX2) == "bf16"
    message = caplog.text
    assert "AVX2" in message and "6.2x slower than fp32" in message and "fp32" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hybrid_retrieval.precision"):
        resolve_precision("bf16", CPU, AVX512_BF16)
    assert caplog.text == ""


def test_the_threshold_is_a_speedup_not_a_flag():
    at = HardwareProbe("cpu", "AVX512", True, MIN_BF16_SPEEDUP)
    below = HardwareProbe("cpu", "AVX512", True, MIN_BF16_SPEEDUP - 0.01)
    assert (at.bf16_faster, below.bf16_faster) == (True, False)
    assert HardwareProbe("cuda", "NVIDIA H200", True, None).bf16_faster
    assert not HardwareProbe("cuda", "Tesla T4", False, None).bf16_faster


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="fp8"):
        resolve_precision("fp8", CPU, AVX2)


def test_the_default_probe_is_used_and_cached(monkeypatch):
    calls = []

    def fake_probe(device_type):
        calls.append(device_type)
        return AVX2

    monkeypatch.setattr(precision_module, "_probe", fake_probe)
    assert resolve_precision("auto", CPU) == "fp32"
    assert calls == ["cpu"]
    facts = machine_facts(CPU, "fp32")
    assert facts["isa"] == "AVX2" and facts["bf16_native"] is False
    assert facts["bf16_speedup"] == 0.16 and "bf16_speedup" not in machine_facts(
        CPU, "fp32", measured=False)
    assert facts["versions"]["torch"] == torch.__version__


def test_the_real_probe_on_this_cpu():
    probe = probe_hardware(CPU)
    assert probe.isa == torch.backends.cpu.get_cpu_capability()
    assert probe.bf16_speedup is not None and probe.bf16_speedup > 0
    assert probe_hardware(CPU) is probe  # measured once per process
    assert resolve_precision("auto", CPU) == ("bf16" if probe.bf16_faster else "fp32")


def test_autocast_contexts():
    x = torch.randn(4, 8)
    w = torch.randn(3, 8)
    with autocast(CPU, "bf16"):
        assert torch.nn.functional.linear(x, w).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert torch.nn.functional.linear(x, w).dtype == torch.float32
