"""Queue the research question's arms x seeds as DVC experiments, then collect their outputs.

The arms and seeds are ``experiments/research_question.yaml``. Experiments are named
``rq-<arm>-s<seed>`` and run from the current commit::

    python scripts/run_arms.py queue            # dvc exp run --queue, one per trained arm x seed
    PYTHONPATH=. dvc queue start -j 2            # two side by side (train uses 1 thread)
    python scripts/run_arms.py collect          # finished runs -> metrics/arms/<arm>/
    python scripts/run_arms.py compare          # comparisons -> metrics/arms/comparisons/

``collect`` copies each finished experiment's ``metrics/eval_per_query.parquet`` and
``metrics/train_languages.json`` to ``metrics/arms/<arm>/s<seed>_per_query.parquet`` and
``s<seed>_train_languages.json`` (small, in git: the README table re-renders on a fresh clone).
A run whose overrides all equal the workspace's ``params.yaml`` (the default recipe's arm, seed
13) is also taken from the workspace when no experiment of that name exists. ``--dry-run``
prints the commands only.

``compare`` writes one JSON per comparison of the arms file and language set
(:func:`hybrid_retrieval.arms.compare_arms`): ``metrics/arms/comparisons/<b>-vs-<a>-<set>.json``,
the paired bootstrap of the seed-averaged arms plus each seed's own difference.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from hybrid_retrieval.arms import (arm_files, compare_arms, experiment_name, load_config,
                                   matches_params, trained_arms)
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.io import atomic_path, write_json
from hybrid_retrieval.revision_outputs import read_output
from hybrid_retrieval.stage import load_params, run_stage

CONFIG = "experiments/research_question.yaml"
OUTPUTS = {"per_query": "metrics/eval_per_query.parquet",
           "train_languages": "metrics/train_languages.json"}


def _yaml_value(value: Any) -> str:
    """A value as ``dvc exp run -S`` parses it (YAML): ``false``, ``[en, de]``, ``0.2``."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def queue_commands(config: dict[str, Any]) -> list[list[str]]:
    """One ``dvc exp run --queue`` per trained arm and seed."""
    commands = []
    for arm, spec in trained_arms(config).items():
        for seed in config["seeds"]:
            overrides = {"seed": seed, **spec["params"]}
            command = ["dvc", "exp", "run", "--queue", "-n", experiment_name(arm, seed)]
            for key, value in overrides.items():
                command += ["-S", f"{key}={_yaml_value(value)}"]
            commands.append(command)
    return commands


def collect(config: dict[str, Any], out_root: Path, params: dict[str, Any],
            repo: str = ".", arms: Sequence[str] = ()) -> list[str]:
    """Copy every finished run's outputs to ``out_root/<arm>/``; the runs found. An arm and seed
    whose overrides are the workspace's ``params`` is read from the workspace when no
    experiment of its name exists. ``arms``: only these (default all)."""
    found = []
    for arm, spec in trained_arms(config).items():
        if arms and arm not in arms:
            continue
        for seed in config["seeds"]:
            name = experiment_name(arm, seed)
            here = matches_params({"seed": seed, **spec["params"]}, params)
            refs = [name] + (["workspace"] if here else [])
            for ref in refs:
                try:
                    blobs = {k: read_output(ref, path, repo=repo) for k, path in OUTPUTS.items()}
                except PipelineError:
                    continue
                target = out_root / arm
                for key, blob in blobs.items():
                    suffix = "_per_query.parquet" if key == "per_query" else \
                        "_train_languages.json"
                    with atomic_path(target / f"s{seed}{suffix}") as tmp:
                        tmp.write_bytes(blob)
                found.append(f"{arm} seed {seed} <- {ref}")
                break
    return found


def compare(config: dict[str, Any], root: Path, low_resource: list[str],
            settings: BootstrapSettings, involving: Sequence[str] = ()) -> list[Path]:
    """Write every comparison of ``config`` (with an arm in ``involving``, if given) to
    ``root/comparisons/``; the files written."""
    written = []
    for name, record in compare_arms(config, low_resource, root, settings,
                                     involving).items():
        path = root / "comparisons" / f"{name}.json"
        write_json(record, path)
        written.append(path)
        multi = next((r for r in record["rows"] if r["dataset"] == config["dataset"]
                      and r["metric"] == "map@20"), None)
        if multi:
            print(f"{name}: {config['dataset']} map@20 {multi['difference']:+.4f} "
                  f"[{multi['low']:+.4f}, {multi['high']:+.4f}], seeds "
                  f"{multi['seed_differences']}")
    print(f"run_arms compare: {len(written)} files -> {root / 'comparisons'}", file=sys.stderr)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("queue", "collect", "compare"))
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--out", default="metrics/arms")
    parser.add_argument("--params", default="params.yaml", help="compare: its "
                        "low_resource_languages; collect: the workspace run's params")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--involving", nargs="+", default=(), metavar="ARM",
                        help="compare: only the comparisons with one of these arms; "
                        "collect: only these arms")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.action == "queue":
        for command in queue_commands(config):
            print(shlex.join(command))
            if not args.dry_run:
                subprocess.run(command, check=True)
        return
    if args.action == "compare":
        compare(config, Path(args.out), load_params(args.params)["low_resource_languages"],
                BootstrapSettings(args.resamples, 13, 0.95), args.involving)
        return
    found = collect(config, Path(args.out), load_params(args.params), arms=args.involving)
    for line in found:
        print(line)
    # Experiment refs live in one repository; the collected files are what a clone has.
    expected = len(trained_arms(config)) * len(config["seeds"])
    present = sum(len(arm_files(arm, config, Path(args.out))) for arm in trained_arms(config))
    print(f"run_arms collect: {len(found)} runs found now; {present} of {expected} trained "
          f"runs in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)
