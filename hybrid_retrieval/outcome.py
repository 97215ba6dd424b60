"""The outcome table: our best recipe beside the hybrid-batch paper's rows (issue 15).

* input: per arm, its seeds' per-query tables (:func:`hybrid_retrieval.arms.arm_files`) and the
  published rows (:data:`hybrid_retrieval.tables.PUBLISHED`);
* output: :func:`arm_outcome` (mono / cross / multi mAP and language bias per dataset, each a
  :class:`~hybrid_retrieval.seed_arms.ArmScore`: seed-averaged estimate, 95% question CI, seed
  sd), :func:`best_arm` (the candidate with the highest mean multi mAP over the datasets) and
  :func:`outcome_markdown` (the README table, the gap to a published row last) and
  :func:`differences_markdown` (the arms' paired differences, from ``run_arms.py compare``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pyarrow as pa

from .evaluation import DATASET_TITLES
from .headline import SETTINGS, BootstrapSettings
from .seed_arms import ArmScore, headline_scores
from .tables import PUBLISHED, Published, difference_cell

#: Our columns per dataset: the three LAReQA settings' mAP and the language bias.
COLUMNS = tuple(f"{s} map" for s in SETTINGS) + ("multi rank_distance",)
TITLES = dict(zip(COLUMNS, SETTINGS + ("bias",)))


def arm_outcome(per_seed: Sequence[pa.Table], datasets: Sequence[str],
                settings: BootstrapSettings) -> dict[str, dict[str, ArmScore]]:
    """Dataset -> column (:data:`COLUMNS`) -> score of one arm."""
    outcome = {}
    for dataset in datasets:
        scores = headline_scores(per_seed, dataset, settings)
        outcome[dataset] = {c: scores[c] for c in COLUMNS if c in scores}
    return outcome


def best_arm(outcomes: Mapping[str, Mapping[str, Mapping[str, ArmScore]]],
             candidates: Sequence[str]) -> str:
    """The candidate (with an outcome) of the highest mean multi mAP over its datasets; ties go
    to the earlier candidate."""
    present = [c for c in candidates if c in outcomes]
    if not present:
        raise ValueError(f"none of the candidate arms {list(candidates)} has a collected run")

    def multi(arm: str) -> float:
        values = [cols["multi map"].estimate for cols in outcomes[arm].values()]
        return sum(values) / len(values)
    return max(present, key=lambda arm: (multi(arm), -present.index(arm)))


def _cell(score: ArmScore | None, column: str) -> str:
    if score is None:
        return "-"
    digits = 0 if column.endswith("rank_distance") else 3
    return f"{score.estimate:.{digits}f} [{score.low:.{digits}f}, {score.high:.{digits}f}]"


def _published_cells(row: Published, datasets: Sequence[str]) -> list[str]:
    cells = []
    for dataset in datasets:
        scores = row.scores.get(dataset, {})
        cells += [f"{scores[s]:.{row.digits}f}" if scores.get(s) is not None else "-"
                  for s in SETTINGS]
        cells.append(f"{row.bias[dataset]:.1f}" if dataset in row.bias else "-")
    return cells


def outcome_markdown(ours: Sequence[tuple[str, Mapping[str, Mapping[str, ArmScore]]]],
                     datasets: Sequence[str], *, target: str = "LaBSE, hybrid batches") -> str:
    """Our rows (label, :func:`arm_outcome`), the paper's hybrid rows, then the last of ours
    minus the ``target`` published row (positive = ahead; bias: lower is better)."""
    header = ["model"] + [f"{DATASET_TITLES.get(d, d)} {TITLES[c]}"
                          for d in datasets for c in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for label, outcome in ours:
        cells = [_cell(outcome.get(d, {}).get(c), c) for d in datasets for c in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    published = [p for p in PUBLISHED if p.model.endswith("hybrid batches")]
    for row in published:
        lines.append(f"| {row.model} ({row.source}) | "
                     + " | ".join(_published_cells(row, datasets)) + " |")
    goal = next(p for p in published if p.model == target)
    label, last = ours[-1]
    gaps = []
    for dataset in datasets:
        for column in COLUMNS:
            score = last.get(dataset, {}).get(column)
            if column.endswith("rank_distance"):
                paper = goal.bias.get(dataset)
                gaps.append("-" if paper is None or score is None
                            else f"{score.estimate - paper:+.0f}")
            else:
                paper = goal.scores.get(dataset, {}).get(column.split()[0])
                gaps.append("-" if paper is None or score is None
                            else f"{score.estimate - paper:+.3f}")
    lines.append(f"| {label} - {target} | " + " | ".join(gaps) + " |")
    return "\n".join(lines) + "\n"


def differences_markdown(comparisons: Sequence[tuple[str, Mapping[str, object]]],
                         datasets: Sequence[str]) -> str:
    """Paired differences B - A of mono / cross / multi mAP per dataset, one row per
    ``(label, record)`` (a ``run_arms.py compare`` file); each cell a
    :func:`~hybrid_retrieval.tables.difference_cell`. Empty for no comparisons."""
    if not comparisons:
        return ""
    header = ["B - A"] + [f"{DATASET_TITLES.get(d, d)} {s}" for d in datasets for s in SETTINGS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for label, record in comparisons:
        by_key = {(r["dataset"], r["setting"], r["metric"]): r for r in record["rows"]}
        cells = [difference_cell(by_key.get((d, s, "map"))) for d in datasets for s in SETTINGS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
