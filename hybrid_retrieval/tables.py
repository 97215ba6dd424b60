"""Markdown results tables rendered from the metrics files, so no number is typed by hand.

:func:`results_markdown` builds the README "Results" section from ``metrics/base.json`` (the
base encoder), ``metrics/eval.json`` (the default run), ``metrics/sweep.json`` (finished
experiments, :func:`hybrid_retrieval.sweep.sweep_records`), saved ``scripts/compare.py
--json-out`` outputs (ablations: paired differences with CIs) and the published numbers in
:data:`PUBLISHED` (other models, other training data: shown apart and labelled as such).
:func:`replace_block` puts it between ``<!-- results:begin -->`` / ``<!-- results:end -->``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .evaluation import DATASET_TITLES, KNOWN_DATASETS, MULTI_MAP_K, MULTI_RECALL_K, PAIR_RECALL_K
from .errors import PipelineError
from .headline import SETTINGS
from .io import atomic_path

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


@dataclass(frozen=True)
class Published:
    """A published result: mAP per dataset and setting (None = not reported)."""

    source: str
    model: str
    training: str
    scores: dict[str, dict[str, float | None]]
    digits: int = 3        # as printed in the paper
    #: language bias (multilingual pool: mean rank distance, our ``multi rank_distance``)
    bias: dict[str, float] = field(default_factory=dict)


#: Numbers as quoted in issue 7 of this project (transcribed from the papers' tables).
PUBLISHED: tuple[Published, ...] = (
    Published("Elmahdy et al. 2024 (arXiv 2408.10536), Table 1", "XLM-R, hybrid batches",
              "their multilingual QA training data",
              {"xquad-r": {"mono": .798, "cross": .705, "multi": .593},
               "mlqa-r": {"mono": .648, "cross": .623, "multi": .512}}),
    Published("Elmahdy et al. 2024 (arXiv 2408.10536), Table 1", "LaBSE, hybrid batches",
              "their multilingual QA training data",
              {"xquad-r": {"mono": .817, "cross": .767, "multi": .682},
               "mlqa-r": {"mono": .686, "cross": .681, "multi": .579}},
              bias={"xquad-r": 221.1, "mlqa-r": 195.0}),  # as quoted in issue 15
    Published("Roy et al. 2020 (LAReQA)", "mBERT En-En", "SQuAD v1.1, English only",
              {"xquad-r": {"multi": .29}, "mlqa-r": {"multi": .36}}, 2),
    Published("Roy et al. 2020 (LAReQA)", "mBERT X-X", "SQuAD + MT, question and answer in "
              "one language", {"xquad-r": {"multi": .23}, "mlqa-r": {"multi": .26}}, 2),
    Published("Roy et al. 2020 (LAReQA)", "mBERT X-X-mono", "as X-X, one language per batch",
              {"xquad-r": {"multi": .52}, "mlqa-r": {"multi": .49}}, 2),
    Published("Roy et al. 2020 (LAReQA)", "mBERT X-Y", "SQuAD + MT, question and answer in "
              "different languages", {"xquad-r": {"multi": .66}, "mlqa-r": {"multi": .49}}, 2),
)

WHAT_DIFFERS = (
    "Published rows are **other models trained on other data**, listed for orientation, not as "
    "a like-for-like comparison. What differs: the encoder (ours: multilingual-e5-small, "
    "117M parameters, dequantised from a 4-bit copy, already contrastively trained by its "
    "authors before our fine-tuning; theirs: XLM-R, LaBSE, mBERT); the training data (ours: "
    "{training}; theirs: see each paper); the amount of training (ours: {steps} steps of "
    "{batch} pairs on a CPU). The test sets are the same LAReQA retrieval sets (XQuAD-R, 11 "
    "languages; MLQA-R, 7), but how each paper aggregates its numbers may differ from ours: "
    "our mAP ranks the whole pool; mono and cross are macro averages over languages and "
    "ordered language pairs, multi over query languages (LAReQA's own code printed the mean "
    "over all queries, our `map_micro`). Debian FAQ-R is ours alone: no published number."
)


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _with_ci(setting: dict[str, Any] | None, metric: str, digits: int = 3) -> str:
    """``0.800 [0.791, 0.809]`` (value and its bootstrap interval), ``-`` when absent."""
    if not setting or setting.get(metric) is None:
        return "-"
    ci = (setting.get("ci") or {}).get(metric)
    text = _num(setting[metric], digits)
    if ci and ci.get("low") is not None:
        text += f" [{_num(ci['low'], digits)}, {_num(ci['high'], digits)}]"
    return text


def datasets_in(*reports: dict[str, Any] | None) -> list[str]:
    """The known datasets any report has, in the pipeline's order."""
    present = {k for r in reports if r for k in r}
    return [d for d in KNOWN_DATASETS if d in present]


def map_table(rows: Sequence[tuple[str, dict[str, Any]]], datasets: Sequence[str]) -> str:
    """mono / cross / multi mAP with 95% CI, one row per (label, report), one block per dataset."""
    header = ["model"] + [f"{DATASET_TITLES.get(d, d)} {s}" for d in datasets for s in SETTINGS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for label, report in rows:
        cells = [label] + [_with_ci(report.get(d, {}).get(s), "map")
                           for d in datasets for s in SETTINGS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def secondary_table(rows: Sequence[tuple[str, dict[str, Any]]], datasets: Sequence[str]) -> str:
    """Recall@1 (mono, cross), mAP@20, Recall@10, micro mAP and rank distance (multi)."""
    columns = [("mono", f"recall@{PAIR_RECALL_K}", 3), ("cross", f"recall@{PAIR_RECALL_K}", 3),
               ("multi", f"map@{MULTI_MAP_K}", 3), ("multi", f"recall@{MULTI_RECALL_K}", 3),
               ("multi", "map_micro", 3), ("multi", "rank_distance", 0)]
    header = ["dataset", "model"] + [f"{s} {m}" for s, m, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for dataset in datasets:
        for label, report in rows:
            by_setting = report.get(dataset)
            if not by_setting:
                continue
            cells = [DATASET_TITLES.get(dataset, dataset), label] + [
                _with_ci(by_setting.get(s), m, d) for s, m, d in columns]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def published_table() -> str:
    """The published numbers (mAP), one row per model, XQuAD-R and MLQA-R blocks."""
    datasets = ("xquad-r", "mlqa-r")
    header = ["source", "model", "training data"] + [
        f"{DATASET_TITLES[d]} {s}" for d in datasets for s in SETTINGS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for p in PUBLISHED:
        cells = [p.source, p.model, p.training] + [
            _num(p.scores.get(d, {}).get(s), p.digits) for d in datasets for s in SETTINGS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(records: Sequence[dict[str, Any]]) -> str:
    """One row per experiment of ``metrics/sweep.json``: params, then mAP [CI] per dataset."""
    experiments: dict[str, dict[str, Any]] = {}
    for r in records:
        exp = experiments.setdefault(r["experiment"], {"params": r, "metrics": {}})
        exp["metrics"].setdefault(r["dataset"], {})[r["setting"]] = {
            "map": r["map"], "ci": {"map": {"low": r["map_low"], "high": r["map_high"]}}}
    datasets = [d for d in KNOWN_DATASETS if any(d in e["metrics"] for e in experiments.values())]
    header = ["experiment", "mix_ratio", "domain_ratio", "train.steps", "max_groups"] + [
        f"{DATASET_TITLES.get(d, d)} {s}" for d in datasets for s in SETTINGS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]

    def order(item: tuple[str, dict[str, Any]]) -> tuple:
        p = item[1]["params"]
        return (str(p["train_steps"]), str(p["max_groups"]), p["domain_ratio"] or 0,
                p["mix_ratio"] or 0, item[0])
    for name, exp in sorted(experiments.items(), key=order):
        p = exp["params"]
        cells = [name, str(p["mix_ratio"]), str(p["domain_ratio"]), str(p["train_steps"]),
                 str(p["max_groups"] or "all")] + [
            _with_ci(exp["metrics"].get(d, {}).get(s), "map") for d in datasets
            for s in SETTINGS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _excludes_zero(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and (low > 0 or high < 0)


def difference_cell(row: dict[str, Any] | None) -> str:
    """One paired difference B - A: ``+0.021 [q low, high]``, the question-bootstrap CI, and
    where the row has seeds (``scripts/run_arms.py compare``) ``{seed low, high} k/n``, the
    t-interval over the seeds' own differences and how many of them share its sign. Bold when
    every interval shown excludes 0; ``-`` for no row."""
    if row is None:
        return "-"
    text = f"{row['difference']:+.3f}"
    tail = f" [{row['low']:+.3f}, {row['high']:+.3f}]"
    clear = _excludes_zero(row["low"], row["high"])
    if "seed_low" in row:
        seeds = [d for d in row.get("seed_differences") or [] if d is not None]
        sign = (row["difference"] > 0) - (row["difference"] < 0)
        agree = sum(((d > 0) - (d < 0)) == sign for d in seeds)
        tail += f" {{{row['seed_low']:+.3f}, {row['seed_high']:+.3f}}} {agree}/{len(seeds)}"
        clear = clear and _excludes_zero(row["seed_low"], row["seed_high"])
    return (f"**{text}**" if clear else text) + tail


def comparison_table(comparisons: Sequence[dict[str, Any]]) -> str:
    """One row per saved comparison and dataset: B - A in mAP [95% CI] per setting.

    ``comparisons`` are ``scripts/compare.py --json-out`` files (keys ``label``, ``a``, ``b``,
    ``languages``, ``languages_by_dataset``, ``rows``); a restricted comparison lists the
    languages each dataset actually had; a difference whose CI excludes 0 is printed in bold.
    """
    header = ["B - A", "languages", "dataset"] + [f"{s} mAP" for s in SETTINGS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for comp in comparisons:
        label = comp.get("label") or f"{comp['b']} - {comp['a']}"
        by_key = {(r["dataset"], r["setting"], r["metric"]): r for r in comp["rows"]}
        datasets = [d for d in KNOWN_DATASETS if any(k[0] == d for k in by_key)]
        for dataset in datasets:
            present = comp.get("languages_by_dataset", {}).get(dataset)
            languages = (" ".join(present or comp["languages"]) if comp.get("languages")
                         else "all")
            cells = [label, languages, DATASET_TITLES.get(dataset, dataset)] + [
                difference_cell(by_key.get((dataset, s, "map"))) for s in SETTINGS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_markdown(*, base: dict[str, Any] | None, default: dict[str, Any] | None,
                     params: dict[str, Any] | None = None,
                     sweep: Sequence[dict[str, Any]] | None = None,
                     comparisons: Sequence[dict[str, Any]] | None = None,
                     muse: dict[str, Any] | None = None) -> str:
    """The whole results section (without the begin/end markers); ``muse`` is the second
    standard multilingual model's report (``metrics/muse.json``), shown beside base e5."""
    params = params or {}
    train = params.get("train", {})
    rows: list[tuple[str, dict[str, Any]]] = []
    if base:
        rows.append(("base encoder (no training)", base))
    if muse:
        rows.append(("mUSE v3 (no training; other model)", muse))
    if default:
        ratios = ", ".join(f"{key} {params[key]}" for key in
                           ("mix_ratio", "domain_ratio", "parallel_ratio") if key in params)
        rows.append((f"default run ({ratios})", default))
    datasets = datasets_in(base, default)
    boot = (default or base or {}).get("bootstrap", {})
    parts = ["*Generated by `python scripts/results_tables.py` from `metrics/*.json`; do not "
             "edit by hand.*", ""]
    if rows:
        parts += [f"**Ours** (mAP, 95% group-bootstrap CI over parallel questions: "
                  f"{boot.get('resamples', '?')} resamples, seed {boot.get('seed', '?')}):", "",
                  map_table(rows, datasets), "",
                  "Other headline metrics (same runs, 95% CI):", "",
                  secondary_table(rows, datasets), ""]
    else:
        parts += ["*No metrics yet: run `dvc repro evaluate` (evaluate@base, "
                  "evaluate@trained).*", ""]
    if sweep:
        parts += ["**Sweep** (finished DVC experiments, `metrics/sweep.json`; rows with a "
                  "max_groups value are on a seeded evaluation subset and compare only with "
                  "each other):", "", sweep_table(sweep), ""]
    if comparisons:
        boot_c = comparisons[0]
        parts += [f"**Ablations** (paired bootstrap over parallel questions, "
                  f"{boot_c.get('resamples', '?')} resamples, seed {boot_c.get('seed', '?')}: "
                  f"B - A in mAP [95% CI], bold where the CI excludes 0; saved "
                  f"`scripts/compare.py --json-out` files):", "",
                  comparison_table(comparisons), ""]
    translate = params.get("translate", {})
    training = (f"{params.get('prepare', {}).get('max_questions', '?')} SQuAD v1.1 questions, "
                f"machine-translated en->{'/'.join(translate.get('languages', []))} "
                f"({translate.get('engine', '?')}), plus Debian Reference + Handbook domain pairs "
                f"with "
                f"probability domain_ratio")
    parts += ["**Published numbers — other models, other training data** (mAP as reported):",
              "", published_table(), "",
              WHAT_DIFFERS.format(training=training, steps=train.get("steps", "?"),
                                  batch=train.get("batch_size", "?"))]
    return "\n".join(parts) + "\n"


def replace_block(text: str, block: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with everything between ``begin`` and ``end`` (default: the results markers)
    replaced by ``block``."""
    if begin not in text or end not in text or text.index(begin) > text.index(end):
        raise ValueError(f"markers {begin} ... {end} not found (in that order)")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{block}{end}{tail}"


def rewrite_block(path: str | os.PathLike, block: str, begin: str = BEGIN, end: str = END
                  ) -> None:
    """Replace the block between ``begin`` and ``end`` in the file ``path`` (e.g. README.md);
    an error naming the file if the markers are missing."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        new = replace_block(text, block, begin, end)
    except ValueError as error:
        raise PipelineError(f"{path}: {error}") from None
    with atomic_path(path) as tmp:
        tmp.write_text(new, encoding="utf-8")
