"""Collect finished DVC experiments into ``metrics/sweep.json`` and a mAP-vs-mix_ratio PNG.

Reads ``dvc exp show --json`` (run here, or a saved copy via ``--exp-show-json``), keeps every
commit and experiment that has ``metrics/eval.json`` (queued, running and failed ones are
skipped), and writes one record per experiment, dataset and setting: params (mix_ratio,
domain_ratio, train_steps, max_groups, seed), mAP and its 95% CI. Typical use after a queued
sweep has finished::

    python scripts/collect_sweep.py                       # HEAD's experiments
    python scripts/collect_sweep.py --all-commits         # experiments of every commit
    python scripts/collect_sweep.py --rev cbc8f86 --names mix0 mix0.25 mix0.75 mix1
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
from typing import Sequence

from hybrid_retrieval.errors import PipelineError, one_line
from hybrid_retrieval.io import read_json, write_json
from hybrid_retrieval.stage import run_stage
from hybrid_retrieval.sweep import check_comparable, collect_experiments, sweep_records

log = logging.getLogger("collect_sweep")


def exp_show_json(all_commits: bool, repo: str, rev: str | None = None) -> list:
    """``dvc exp show --json`` of ``repo`` (``-A`` with ``all_commits``, ``--rev`` with ``rev``)."""
    cmd = (["dvc", "exp", "show", "--json"] + (["-A"] if all_commits else [])
           + (["--rev", rev] if rev else []))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=repo)
    if proc.returncode != 0:
        raise PipelineError(f"{' '.join(cmd)} failed: {one_line(proc.stderr)[-500:]}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{' '.join(cmd)}: output is not JSON ({exc.msg})") from None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-show-json", default=None,
                        help="saved `dvc exp show --json` output (default: run it)")
    parser.add_argument("--all-commits", action="store_true", help="dvc exp show -A")
    parser.add_argument("--rev", default=None,
                        help="the commit whose experiments to collect (dvc exp show --rev)")
    parser.add_argument("--names", nargs="+", default=None,
                        help="keep only these experiments (and commits), e.g. one sweep's points")
    parser.add_argument("--include-workspace", action="store_true")
    parser.add_argument("--repo", default=".")
    parser.add_argument("--metrics-file", default="metrics/eval.json")
    parser.add_argument("--out", default="metrics/sweep.json")
    parser.add_argument("--png", default="metrics/plots/sweep_map.png",
                        help="figure path ('' = none)")
    args = parser.parse_args(argv)

    data = (read_json(args.exp_show_json) if args.exp_show_json
            else exp_show_json(args.all_commits, args.repo, args.rev))
    experiments = collect_experiments(data, metrics_file=args.metrics_file,
                                      include_workspace=args.include_workspace)
    if args.names:
        missing = sorted(set(args.names) - {e.name for e in experiments})
        if missing:
            raise PipelineError(f"--names: no finished experiment named {missing} (finished: "
                                f"{sorted(e.name for e in experiments if not e.is_commit)})")
        experiments = [e for e in experiments if e.is_commit or e.name in args.names]
    if not experiments:
        raise PipelineError(f"no finished experiment with {args.metrics_file} in the dvc exp "
                            f"show output (queued or running ones are skipped)")
    records = sweep_records(experiments)
    for warning in check_comparable(records):
        log.warning("%s", warning)
    write_json(records, args.out)
    if args.png:
        from hybrid_retrieval.plots import save, sweep_figure
        save(sweep_figure(records), args.png)
    print(f"collect_sweep: {len(experiments)} experiments "
          f"({', '.join(e.name for e in experiments)}) -> {args.out}"
          + (f", {args.png}" if args.png else ""))


if __name__ == "__main__":
    run_stage(main)
