"""Compare two evaluation outputs: paired-bootstrap difference B - A per headline metric.

A and B are each a per-query Parquet file, ``workspace``, a Git revision or a DVC experiment
name (the file ``--path`` is then read at that revision, from the DVC cache if it is an
output). Examples::

    python scripts/compare.py metrics/base_per_query.parquet metrics/eval_per_query.parquet
    python scripts/compare.py HEAD workspace
    python scripts/compare.py exp-mix0 exp-mix1        # two finished experiments
    python scripts/compare.py HEAD qa-only --languages ar el hi ru th tr vi   # one language group
    python scripts/compare.py rq-b-s13,rq-b-s14,rq-b-s15 rq-d-s13,rq-d-s14,rq-d-s15  # 3 seeds each

An arm given as a comma-separated list (one run per training seed) is compared by its
seed-averaged per-query metrics (:func:`hybrid_retrieval.seed_arms.average_per_query`); the
interval is then over questions of the seed average (see ``scripts/research_answer.py`` for
the spread over seeds).

Prints a Markdown table (dataset, setting, metric, A, B, B - A, 95% CI, p, Holm p);
``--json-out`` also writes the rows as JSON.
"""

from __future__ import annotations

import argparse
from typing import Sequence

import pyarrow as pa

from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.io import write_json
from hybrid_retrieval.paired_comparison import (compare_per_query, format_comparison,
                                                languages_by_dataset, restrict_languages)
from hybrid_retrieval.revision_outputs import read_per_query
from hybrid_retrieval.seed_arms import average_per_query
from hybrid_retrieval.stage import run_stage


def read_arm(spec: str, path: str, repo: str) -> pa.Table:
    """One run (file, revision, experiment) or a comma-separated list of runs (seeds),
    averaged per query."""
    refs = spec.split(",")
    return average_per_query([read_per_query(ref, path, repo=repo) for ref in refs], refs)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="baseline: Parquet file, 'workspace', Git rev or experiment")
    parser.add_argument("b", help="compared system, same forms as A")
    parser.add_argument("--path", default="metrics/eval_per_query.parquet",
                        help="per-query file inside the repo, for revisions and experiments")
    parser.add_argument("--path-a", default=None, help="--path for A only (e.g. the base "
                        "encoder's metrics/base_per_query.parquet)")
    parser.add_argument("--repo", default=".")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--languages", nargs="+", default=None,
                        help="one language group: mono/cross rows with both languages in it, "
                        "multi rows with the query language in it")
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--label", default=None, help="what B - A measures, stored in the JSON "
                        "(results_tables shows it), e.g. '+ aligned domain pairs'")
    args = parser.parse_args(argv)

    settings = BootstrapSettings(args.resamples, args.seed, args.confidence)
    path_a = args.path_a or args.path
    a = read_arm(args.a, path_a, args.repo)
    b = read_arm(args.b, args.path, args.repo)
    names = (args.a if args.a.endswith(".parquet") else f"{args.a}:{path_a}",
             args.b if args.b.endswith(".parquet") else f"{args.b}:{args.path}")
    rows = compare_per_query(a, b, settings, names=names, datasets=args.datasets,
                             languages=args.languages)
    if args.languages:
        print(f"languages: {' '.join(sorted(args.languages))} (mono/cross: query and pool "
              f"language both in the group; multi: query language in it)")
    print(format_comparison(rows, names, settings), end="")
    if args.json_out:
        write_json({"a": names[0], "b": names[1], "label": args.label,
                    "resamples": settings.resamples,
                    "seed": settings.seed, "confidence": settings.confidence,
                    "languages": sorted(args.languages) if args.languages else None,
                    "languages_by_dataset": languages_by_dataset(
                        restrict_languages(a, args.languages) if args.languages else a),
                    "rows": [r.as_dict() for r in rows]}, args.json_out)


if __name__ == "__main__":
    run_stage(main)
