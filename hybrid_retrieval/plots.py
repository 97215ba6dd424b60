"""Static PNG figures of the pipeline's plot data (matplotlib, Agg backend), for the README.

The same data files are declared as ``dvc plots`` in ``dvc.yaml``; these PNGs are the small,
committed copies a reader sees without running DVC. Every function takes plain records (the
JSON/TSV the stages write), draws one figure and writes it with :func:`save`.

* :func:`training_figure`: loss (raw and smoothed) and cumulative batch kinds per step;
* :func:`sweep_figure`: mAP vs ``mix_ratio`` per setting, with 95% CI bands;
* :func:`heatmap_figure`: query-language x pool-language mAP, one panel per dataset;
* :func:`language_bias_figure`: rank distance (worst - best gold rank) per language, per model.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from .evaluation import DATASET_TITLES as TITLES, KNOWN_DATASETS  # noqa: E402
from .io import atomic_path  # noqa: E402

DPI = 80
SETTING_COLORS = {"mono": "tab:blue", "cross": "tab:orange", "multi": "tab:green"}


def save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG atomically (no timestamps in the metadata) and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight",
                    metadata={"Software": None})
    plt.close(fig)
    return path


def read_tsv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A dvclive ``step<TAB>value`` file as float columns."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        return {}
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter window at the start)."""
    if window <= 1 or values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(values.size):
        lo = max(0, i + 1 - window)
        out[i] = (sums[i + 1] - sums[lo]) / (i + 1 - lo)
    return out


def training_figure(train_dir: str | os.PathLike) -> plt.Figure:
    """Loss per step (raw + moving average) and cumulative mono/cross/fallback batch counts.

    ``train_dir`` is dvclive's ``plots/metrics/train`` folder (``loss.tsv``,
    ``mono_batches.tsv``, ``cross_batches.tsv``, ``fallback_batches.tsv``: running counts
    of the batches of each kind so far, as the train stage logs them).
    """
    folder = Path(train_dir)
    loss = read_tsv(folder / "loss.tsv")
    fig, (ax_loss, ax_kind) = plt.subplots(1, 2, figsize=(9, 3.2))
    if loss:
        window = max(1, len(loss["step"]) // 20)
        ax_loss.plot(loss["step"], loss["loss"], color="0.75", lw=0.8, label="per step")
        ax_loss.plot(loss["step"], smooth(loss["loss"], window), color="tab:red", lw=1.5,
                     label=f"mean of {window}")
        ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=8)
    ax_loss.set(title="training loss (InfoNCE)", xlabel="step", ylabel="loss")
    for kind, color in (("mono", "tab:blue"), ("cross", "tab:orange"), ("fallback", "0.4")):
        path = folder / f"{kind}_batches.tsv"
        if path.is_file():
            data = read_tsv(path)
            if data:
                ax_kind.plot(data["step"], data[f"{kind}_batches"], color=color, label=kind)
    ax_kind.set(title="batches by kind (cumulative)", xlabel="step", ylabel="batches")
    ax_kind.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _series_label(record: Mapping[str, Any], varying: Sequence[str]) -> str:
    return ", ".join(f"{k}={record[k]}" for k in varying) if varying else ""


def sweep_figure(records: Sequence[Mapping[str, Any]]) -> plt.Figure:
    """mAP vs mix_ratio per dataset (panels) and setting (colours), with 95% CI bands.

    Records as in ``metrics/sweep.json``. Points that differ in ``domain_ratio``,
    ``train_steps`` or ``max_groups`` are drawn as separate lines (dashed for the later ones).
    """
    datasets = [d for d in KNOWN_DATASETS if any(r["dataset"] == d for r in records)]
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(4.2 * max(1, len(datasets)),
                                                                 3.4), squeeze=False)
    varying = [k for k in ("domain_ratio", "train_steps", "max_groups")
               if len({str(r[k]) for r in records}) > 1]
    series = sorted({_series_label(r, varying) for r in records})
    styles = ["-", "--", ":", "-."]
    for ax, dataset in zip(axes[0], datasets):
        for setting, color in SETTING_COLORS.items():
            for s_index, label in enumerate(series):
                points = sorted((r for r in records if r["dataset"] == dataset
                                 and r["setting"] == setting and r["map"] is not None
                                 and r["mix_ratio"] is not None
                                 and _series_label(r, varying) == label),
                                key=lambda r: r["mix_ratio"])
                if not points:
                    continue
                x = np.array([r["mix_ratio"] for r in points], dtype=float)
                y = np.array([r["map"] for r in points], dtype=float)
                low = np.array([np.nan if r["map_low"] is None else r["map_low"]
                                for r in points], dtype=float)
                high = np.array([np.nan if r["map_high"] is None else r["map_high"]
                                 for r in points], dtype=float)
                name = setting + (f" ({label})" if label else "")
                ax.plot(x, y, styles[s_index % len(styles)], marker="o", ms=4, color=color,
                        label=name)
                if np.isfinite(low).any():
                    ax.fill_between(x, low, high, color=color, alpha=0.15, lw=0)
        ax.set(title=TITLES.get(dataset, dataset), xlabel="mix_ratio  (P(monolingual batch))",
               ylabel="mAP", xlim=(-0.05, 1.05))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("mAP vs mix_ratio (bands: 95% group-bootstrap CI)", fontsize=10)
    fig.tight_layout()
    return fig


def heatmap_figure(cross_records: Sequence[Mapping[str, Any]], title: str) -> plt.Figure:
    """Query language (rows) x pool language (columns) mAP, one panel per dataset.

    ``cross_records``: the evaluate stage's ``--cross-out`` records (dataset, query_lang,
    pool_lang, map); the diagonal is monolingual mAP.
    """
    datasets = [d for d in KNOWN_DATASETS if any(r["dataset"] == d for r in cross_records)]
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(4.3 * max(1, len(datasets)),
                                                                 4.0), squeeze=False)
    image = None
    for ax, dataset in zip(axes[0], datasets):
        rows = [r for r in cross_records if r["dataset"] == dataset]
        langs = sorted({r["query_lang"] for r in rows} | {r["pool_lang"] for r in rows})
        matrix = np.full((len(langs), len(langs)), np.nan)
        for r in rows:
            if r["map"] is not None:
                matrix[langs.index(r["query_lang"]), langs.index(r["pool_lang"])] = r["map"]
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(langs)), langs, fontsize=7)
        ax.set_yticks(range(len(langs)), langs, fontsize=7)
        ax.set(title=TITLES.get(dataset, dataset), xlabel="candidate pool language",
               ylabel="query language")
        if len(langs) <= 12:
            for i in range(len(langs)):
                for j in range(len(langs)):
                    if not math.isnan(matrix[i, j]):
                        ax.text(j, i, f"{matrix[i, j]:.2f}"[1:] if matrix[i, j] < 1 else "1",
                                ha="center", va="center", fontsize=5.5,
                                color="white" if matrix[i, j] < 0.6 else "black")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="mAP")
    fig.suptitle(title, fontsize=10)
    return fig


def language_bias_figure(per_language: Mapping[str, Sequence[Mapping[str, Any]]]
                         ) -> plt.Figure:
    """Multilingual-pool rank distance (worst - best gold rank) per query language.

    ``per_language`` maps a model label to its evaluate ``--plots-out`` records; bars of the
    models sit side by side. Lower is less language-biased (the golds are one answer per
    language; a language-agnostic model ranks them together).
    """
    labels = list(per_language)
    multi = {label: [r for r in recs if r["setting"] == "multi"
                     and r.get("rank_distance") is not None]
             for label, recs in per_language.items()}
    datasets = [d for d in KNOWN_DATASETS if any(r["dataset"] == d for rs in multi.values()
                                                 for r in rs)]
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(4.3 * max(1, len(datasets)),
                                                                 3.2), squeeze=False)
    width = 0.8 / max(1, len(labels))
    for ax, dataset in zip(axes[0], datasets):
        langs = sorted({r["lang"] for rs in multi.values() for r in rs
                        if r["dataset"] == dataset})
        for k, label in enumerate(labels):
            value = {r["lang"]: r["rank_distance"] for r in multi[label]
                     if r["dataset"] == dataset}
            ax.bar(np.arange(len(langs)) + (k - (len(labels) - 1) / 2) * width,
                   [value.get(lang, np.nan) for lang in langs], width, label=label)
        ax.set_xticks(range(len(langs)), langs, fontsize=7)
        ax.set(title=TITLES.get(dataset, dataset), xlabel="query language",
               ylabel="rank distance (lower = less bias)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Language bias in the multilingual pool", fontsize=10)
    fig.tight_layout()
    return fig


def research_figure(records: Mapping[str, Mapping[str, Mapping[str, float]]],
                    labels: Mapping[str, str], rows: Mapping[str, Sequence[str]], *,
                    ylabel: str = "XTREME-R score (multi mAP@20)",
                    title: str = "XQuAD-R, multilingual pool: low-resource languages (95% CI)"
                    ) -> plt.Figure:
    """Arms as bars: one group of bars per row (a language or a language group), one bar per
    arm (``records[arm][row]`` with ``estimate``, ``low``, ``high``: the 95% CI as an error
    bar)."""
    arms = [a for a in labels if a in records]
    names = list(rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 3.6))
    width = 0.8 / max(1, len(arms))
    for k, arm in enumerate(arms):
        est = np.array([records[arm].get(r, {}).get("estimate", np.nan) for r in names])
        low = np.array([records[arm].get(r, {}).get("low", np.nan) for r in names])
        high = np.array([records[arm].get(r, {}).get("high", np.nan) for r in names])
        ax.bar(np.arange(len(names)) + (k - (len(arms) - 1) / 2) * width, est, width,
               yerr=np.vstack([est - low, high - est]), capsize=2, label=labels[arm])
    ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], fontsize=7)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
