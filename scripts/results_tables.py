"""Print (or write into README.md) the results tables, rendered from the metrics files.

    python scripts/results_tables.py                      # print Markdown
    python scripts/results_tables.py --update README.md   # replace the block between
                                                          # <!-- results:begin/end -->
Missing inputs are left out of the tables (e.g. no sweep yet).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from hybrid_retrieval.io import read_json
from hybrid_retrieval.stage import load_params, run_stage
from hybrid_retrieval.tables import results_markdown, rewrite_block


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--base", default="metrics/base.json")
    parser.add_argument("--eval", default="metrics/eval.json")
    parser.add_argument("--muse", default="metrics/muse.json")
    parser.add_argument("--sweep", default="metrics/sweep.json")
    parser.add_argument("--comparisons", nargs="*", default=None,
                        help="compare.py --json-out files, in table order (default: "
                        "metrics/ablations/*.json, sorted)")
    parser.add_argument("--update", default=None, help="Markdown file whose results block "
                        "is replaced")
    args = parser.parse_args(argv)

    def optional(path: str):
        return read_json(path) if Path(path).is_file() else None
    comparison_files = (args.comparisons if args.comparisons is not None
                        else sorted(Path("metrics/ablations").glob("*.json")))
    text = results_markdown(base=optional(args.base), default=optional(args.eval),
                            params=load_params(args.params), sweep=optional(args.sweep),
                            comparisons=[read_json(p) for p in comparison_files],
                            muse=optional(args.muse))
    if args.update:
        rewrite_block(args.update, text)
        print(f"results_tables: updated {args.update}")
    else:
        print(text, end="")


if __name__ == "__main__":
    run_stage(main)
