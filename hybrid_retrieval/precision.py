"""The floating-point precision a stage computes in, chosen per machine, and the machine facts
written next to every number it produces.

``auto`` resolves to ``bf16`` only where bfloat16 is native *and* measured faster than fp32 on
this machine (:func:`probe_hardware` times one encoder-sized linear layer both ways), else to
``fp32``. Native is not enough on its own: with ``ONEDNN_MAX_CPU_ISA=AVX2`` (or on a CPU whose
oneDNN build emulates bf16) the flag can say yes while autocast runs ~6x slower than fp32. A
forced ``bf16`` on a CPU without native bf16 runs, with a warning that states the measured cost.

Inputs: a precision name from :data:`PRECISIONS` and a ``torch.device``. Outputs: the effective
precision (``fp32`` / ``bf16`` / ``fp16``), an autocast context, and :func:`machine_facts` (ISA or
GPU name, CPU model, bf16 probe, library versions) for the ``run`` block of a metrics file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path

import torch

log = logging.getLogger(__name__)



class Precision(StrEnum):
    """A precision setting (``train.precision``; ``evaluate.precision`` offers all but fp16)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


PRECISIONS = tuple(p.value for p in Precision)

#: ``auto`` picks bf16 only if the probe measured at least this speed-up over fp32.
MIN_BF16_SPEEDUP = 1.2

#: The probe's product: a token batch through one of e5-small's FFN projections. Measured on
#: one AVX512-BF16 CPU, bf16 was 1.6-4x faster (noisy under load), emulated bf16 12-20x slower.
_PROBE_SHAPE = (2048, 384, 1536)  # tokens, in features, out features
_PROBE_REPEATS = 4

_VERSIONED_PACKAGES = ("torch", "transformers", "ctranslate2", "numpy")


@dataclass(frozen=True)
class HardwareProbe:
    """What the machine offers for one device type.

    ``isa`` is torch's CPU kernel level (``AVX512``, ``AVX2``, ...) or the GPU's name;
    ``bf16_speedup`` is fp32 time / bf16 time of the probe product (:func:`measure_bf16_speedup`;
    ``None`` on a GPU, where the hardware flag is trusted).
    """

    device_type: str
    isa: str
    bf16_native: bool
    bf16_speedup: float | None

    @property
    def bf16_faster(self) -> bool:
        """bf16 both native and measured (on a CPU) at least :data:`MIN_BF16_SPEEDUP` faster."""
        if not self.bf16_native:
            return False
        return self.device_type == "cuda" or (self.bf16_speedup or 0.0) >= MIN_BF16_SPEEDUP


def _cpu_bf16_native() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private helper: absent in some builds
        return False


def measure_bf16_speedup(device: torch.device, tokens: int = _PROBE_SHAPE[0],
                         repeats: int = _PROBE_REPEATS) -> float:
    """fp32 seconds / bf16 seconds of one encoder-sized matrix product (operands already in each
    dtype, so the kernel is timed, not the casts); best of ``repeats`` interleaved runs each."""
    _, d_in, d_out = _PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    operands = {torch.float32: (torch.randn(tokens, d_in, generator=generator),
                                torch.randn(d_in, d_out, generator=generator))}
    operands[torch.bfloat16] = tuple(t.bfloat16() for t in operands[torch.float32])
    operands = {dtype: tuple(t.to(device) for t in pair) for dtype, pair in operands.items()}
    best = {dtype: float("inf") for dtype in operands}
    with torch.inference_mode():
        for repeat in range(repeats + 1):  # the first round warms up kernels
            for dtype, (left, right) in operands.items():
                started = time.perf_counter()
                torch.matmul(left, right)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if repeat:
                    best[dtype] = min(best[dtype], time.perf_counter() - started)
    return best[torch.float32] / max(best[torch.bfloat16], 1e-9)


@functools.lru_cache(maxsize=None)
def _probe(device_type: str) -> HardwareProbe:
    if device_type == "cuda":
        return HardwareProbe("cuda", torch.cuda.get_device_name(0),
                             bool(torch.cuda.is_bf16_supported()), None)
    native = _cpu_bf16_native()
    # Timed whatever the flag says (the measured cost of a forced bf16 goes into its warning);
    # emulated bf16 is so slow that a small product and one run say enough.
    speedup = measure_bf16_speedup(torch.device("cpu")) if native else \
        measure_bf16_speedup(torch.device("cpu"), tokens=128, repeats=1)
    return HardwareProbe("cpu", torch.backends.cpu.get_cpu_capability(), native,
                         round(speedup, 2))


def probe_hardware(device: torch.device) -> HardwareProbe:
    """The (cached, once per process and device type) :class:`HardwareProbe` of ``device``."""
    return _probe(device.type)


def resolve_precision(precision: str, device: torch.device,
                      probe: HardwareProbe | None = None) -> str:
    """``auto`` -> ``bf16`` where :attr:`HardwareProbe.bf16_faster`, else ``fp32``; other values
    are returned unchanged (a forced ``bf16`` on a CPU without native bf16 logs a warning with
    the measured slow-down). ``probe`` defaults to :func:`probe_hardware` (tests pass a fake).
    Always a plain ``str`` (a :class:`Precision` member is unwrapped: it goes into pickles)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}, expected one of {list(PRECISIONS)}")
    precision = str(precision.value if isinstance(precision, Precision) else precision)
    if precision in ("fp32", "fp16"):
        return precision
    probe = probe or probe_hardware(device)
    if precision == "auto":
        return "bf16" if probe.bf16_faster else "fp32"
    if device.type == "cpu" and not probe.bf16_faster:
        cost = (f"{1 / probe.bf16_speedup:.1f}x slower than fp32 in a probe"
                if probe.bf16_speedup else "of unmeasured speed")
        log.warning("precision 'bf16' is forced, but this CPU (%s, native bf16: %s) is not "
                    "faster in bf16: autocast is %s; 'auto' would choose fp32 here",
                    probe.isa, probe.bf16_native, cost)
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to bfloat16 / float16 for ``bf16`` / ``fp16``; a no-op context for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_facts(device: torch.device, precision: str, *, measured: bool = True) -> dict:
    """The ``run``-block facts of a measurement: effective precision, ISA or GPU name, CPU model,
    native bf16, the versions of the numeric libraries and, if ``measured``, the probe's
    ``bf16_speedup`` (a timing: it differs between runs, so files that must repeat byte for byte,
    such as ``training.json``, leave it out)."""
    probe = probe_hardware(device)
    facts = {"precision": precision, "isa": probe.isa, "cpu": _cpu_model(),
             "bf16_native": probe.bf16_native,
             "versions": {name: _version(name) for name in _VERSIONED_PACKAGES}}
    if measured:
        facts["bf16_speedup"] = probe.bf16_speedup
    return facts


__all__ = ["PRECISIONS", "MIN_BF16_SPEEDUP", "HardwareProbe", "probe_hardware",
           "measure_bf16_speedup", "resolve_precision", "autocast", "machine_facts"]
