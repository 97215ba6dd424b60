"""Time a pipeline command (``dvc repro``, ``dvc exp run ...``) stage by stage.

    python benchmarks/time_pipeline.py --out metrics/timings/repro-AVX512.json -- dvc repro
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \\
        python benchmarks/time_pipeline.py --out metrics/timings/repro-AVX2.json -- dvc repro

Runs the command, passes its output through (each line also to ``--log`` when given), and
writes JSON: the command, the CPU (model, torch ISA, native bf16, the ISA caps in the
environment), the load average before and after, the total wall time, and the seconds from each
``Running stage 'X'`` line to the next stage line (or the end), with each stage's last output
line (its summary). ``benchmarks/run.py --timings`` reads these files into its ``goals`` block.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

STAGE_LINE = re.compile(r"^(Running stage|Stage) '([^']+)'")
DVC_CHATTER = ("Updating lock file", "Use `dvc push`", "To track the changes", "\tgit add",
               "To enable auto staging")
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "CT2_FORCE_CPU_ISA")


def cpu_facts() -> dict:
    """CPU model, torch's ISA, native bf16 and the ISA caps set in this environment."""
    import torch

    from hybrid_retrieval.precision import _cpu_model, probe_hardware

    probe = probe_hardware(torch.device("cpu"))
    return {"cpu": _cpu_model(), "isa": probe.isa, "bf16_native": probe.bf16_native,
            "bf16_speedup": probe.bf16_speedup, "cores": os.cpu_count(),
            "env": {name: os.environ[name] for name in ISA_CAPS if name in os.environ}}


def run_timed(command: list[str], log_path: Path | None) -> dict:
    """Run ``command``; per-stage seconds (stages that ran, not those skipped) and totals."""
    started = time.monotonic()
    stages: dict[str, dict] = {}
    current: str | None = None
    log = log_path.open("a", encoding="utf-8") if log_path else None
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as child:
        for line in child.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if log:
                log.write(f"{time.strftime('%H:%M:%S')} {line}")
                log.flush()
            now = time.monotonic() - started
            match = STAGE_LINE.match(line)
            if match:
                if current:
                    stages[current]["seconds"] = round(now - stages[current]["start"], 1)
                current = match.group(2) if match.group(1) == "Running stage" else None
                if current:
                    stages[current] = {"start": round(now, 1), "last_line": ""}
            elif current and line.strip() and not line.startswith(DVC_CHATTER):
                stages[current]["last_line"] = line.strip()[-400:]
    total = time.monotonic() - started
    if current:
        stages[current]["seconds"] = round(total - stages[current]["start"], 1)
    if log:
        log.close()
    return {"returncode": child.returncode, "wall_s": round(total, 1), "stages": stages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--label", default=None, help="e.g. 'fresh clone, dvc repro'")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    record = {"label": args.label, "command": command, "machine": cpu_facts(),
              "load_before": list(os.getloadavg()),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    record.update(run_timed(command, args.log))
    record["load_after"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"time_pipeline: {' '.join(command)}: rc={record['returncode']} "
          f"wall={record['wall_s']:.0f} s on {record['machine']['isa']} -> {args.out}")
    return record["returncode"]


if __name__ == "__main__":
    sys.exit(main())
