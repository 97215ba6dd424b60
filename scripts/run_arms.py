"""Queue the research question's arms x seeds as DVC experiments, then collect their outputs.

The arms and seeds are ``experiments/research_question.yaml``. Experiments are named
``rq-<arm>-s<seed>`` and run from the current commit::

    python scripts/run_arms.py queue            # dvc exp run --queue, one per trained arm x seed
    dvc queue start -j 1                         # one at a time (2-core machine)
    python scripts/run_arms.py collect          # finished runs -> metrics/arms/<arm>/

``collect`` copies each finished experiment's ``metrics/eval_per_query.parquet`` and
``metrics/train_languages.json`` to ``metrics/arms/<arm>/s<seed>_per_query.parquet`` and
``s<seed>_train_languages.json`` (small, in git: the README table re-renders on a fresh clone).
A run whose params equal the workspace's (the default arm, seed 13) is also taken from the
workspace when no experiment of that name exists. ``--dry-run`` prints the commands only.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import atomic_path
from hybrid_retrieval.revision_outputs import read_output
from hybrid_retrieval.stage import run_stage

CONFIG = "experiments/research_question.yaml"
OUTPUTS = {"per_query": "metrics/eval_per_query.parquet",
           "train_languages": "metrics/train_languages.json"}


def load_config(path: str = CONFIG) -> dict[str, Any]:
    """The arms file; every trained arm (one with ``params``) needs ``seeds``."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: arms file not found") from None
    if not isinstance(config, dict) or not isinstance(config.get("arms"), dict):
        raise PipelineError(f"{path}: expected a mapping with 'arms'")
    return config


def trained_arms(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: arm for name, arm in config["arms"].items() if "params" in arm}


def experiment_name(arm: str, seed: int) -> str:
    return f"rq-{arm}-s{seed}"


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


def collect(config: dict[str, Any], out_root: Path, repo: str = ".") -> list[str]:
    """Copy every finished run's outputs to ``out_root/<arm>/``; the runs found."""
    found = []
    for arm, spec in trained_arms(config).items():
        for seed in config["seeds"]:
            name = experiment_name(arm, seed)
            refs = [name] + (["workspace"] if not spec["params"] and seed == 13 else [])
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("queue", "collect"))
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--out", default="metrics/arms")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.action == "queue":
        for command in queue_commands(config):
            print(shlex.join(command))
            if not args.dry_run:
                subprocess.run(command, check=True)
        return
    found = collect(config, Path(args.out))
    for line in found:
        print(line)
    expected = len(trained_arms(config)) * len(config["seeds"])
    print(f"run_arms collect: {len(found)} of {expected} trained runs -> {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)
