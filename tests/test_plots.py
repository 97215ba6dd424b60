"""PNG figures: each draws the numbers it is given, and the render_plots stage writes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hybrid_retrieval.io import write_json
from hybrid_retrieval.plots import (heatmap_figure, language_bias_figure, read_tsv, save, smooth,
                                    sweep_figure, training_figure)

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_train_dir(folder: Path, steps: int = 40) -> Path:
    """dvclive-shaped TSVs: loss per step, running counts of batch kinds."""
    folder.mkdir(parents=True)
    mono = np.cumsum(np.arange(steps) % 2 == 0)
    columns = {"loss": 2.0 * np.exp(-np.arange(steps) / 10) + 0.01, "mono_batches": mono,
               "cross_batches": np.arange(1, steps + 1) - mono,
               "fallback_batches": np.zeros(steps)}
    for name, values in columns.items():
        (folder / f"{name}.tsv").write_text(
            f"step\t{name}\n" + "".join(f"{i}\t{float(v)}\n" for i, v in enumerate(values)))
    return folder


def cross_records(dataset: str, langs: list[str]) -> list[dict]:
    return [{"dataset": dataset, "query_lang": x, "pool_lang": y,
             "map": None if (x, y) == (langs[0], langs[-1]) else 0.5 + 0.1 * i - 0.05 * j,
             "n_queries": 3} for i, x in enumerate(langs) for j, y in enumerate(langs)]


def per_language(dataset: str, distances: dict[str, float]) -> list[dict]:
    records = []
    for lang, distance in distances.items():
        records.append({"dataset": dataset, "setting": "multi", "lang": lang,
                        "key": f"{dataset}/multi/{lang}", "map": 0.3,
                        "rank_distance": distance})
        records.append({"dataset": dataset, "setting": "mono", "lang": lang,
                        "key": f"{dataset}/mono/{lang}", "map": 0.8, "rank_distance": None})
    return records


def test_training_figure_plots_loss_and_running_counts(tmp_path: Path) -> None:
    folder = write_train_dir(tmp_path / "train")
    assert read_tsv(folder / "loss.tsv")["step"].tolist() == list(range(40))
    fig = training_figure(folder)
    ax_loss, ax_kind = fig.axes
    raw = ax_loss.lines[0].get_ydata()
    assert raw == pytest.approx(read_tsv(folder / "loss.tsv")["loss"])
    kinds = {line.get_label(): line.get_ydata() for line in ax_kind.lines}
    assert kinds["mono"][-1] == 20 and kinds["cross"][-1] == 20 and kinds["fallback"][-1] == 0
    path = save(fig, tmp_path / "out/training.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size < 150_000


def test_smooth_is_a_trailing_mean() -> None:
    assert smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2) == pytest.approx([1, 2, 4, 6])
    assert smooth(np.array([1.0, 2.0]), 1).tolist() == [1.0, 2.0]


def test_heatmap_shows_the_matrix(tmp_path: Path) -> None:
    records = cross_records("xquad-r", ["de", "en", "zh"]) + cross_records("mlqa-r", ["ar", "en"])
    fig = heatmap_figure(records, "test")
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["XQuAD-R", "MLQA-R"]
    matrix = np.ma.filled(panels[0].images[0].get_array(), np.nan)
    assert matrix[0, 0] == pytest.approx(0.5) and matrix[2, 1] == pytest.approx(0.65)
    assert np.isnan(matrix[0, 2])                               # missing pair stays empty
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["de", "en", "zh"]
    assert save(fig, tmp_path / "h.png").read_bytes()[:8] == PNG_MAGIC


def test_language_bias_bars_per_model() -> None:
    fig = language_bias_figure({
        "base": per_language("xquad-r", {"de": 100.0, "en": 50.0}),
        "trained": per_language("xquad-r", {"de": 40.0, "en": 10.0})})
    bars = fig.axes[0].patches
    assert [b.get_height() for b in bars] == [100.0, 50.0, 40.0, 10.0]   # mono rows ignored
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["base", "trained"]


def sweep_rows(domain_ratio: float = 0.2) -> list[dict]:
    rows = []
    for mix in (1.0, 0.0, 0.5):                                  # unsorted on purpose
        for setting, value in (("mono", 0.7 + 0.1 * mix), ("cross", 0.6), ("multi", 0.4)):
            rows.append({"dataset": "xquad-r", "setting": setting, "mix_ratio": mix,
                         "domain_ratio": domain_ratio, "train_steps": 100, "max_groups": 200,
                         "map": value, "map_low": value - 0.02,
                         "map_high": None if setting == "multi" else value + 0.02})
    return rows


def test_sweep_figure_lines_in_mix_order_with_bands() -> None:
    fig = sweep_figure(sweep_rows())
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines["mono"].get_xdata()) == [0.0, 0.5, 1.0]
    assert lines["mono"].get_ydata() == pytest.approx([0.7, 0.75, 0.8])
    assert len(ax.collections) == 3                    # one CI band per setting
    two = sweep_figure(sweep_rows(0.2) + sweep_rows(0.0))
    labels = {line.get_label() for line in two.axes[0].lines}
    assert {"mono (domain_ratio=0.0)", "mono (domain_ratio=0.2)"} <= labels


@pytest.fixture(scope="module")
def render_stage():
    spec = importlib.util.spec_from_file_location("render_plots", ROOT / "stages/render_plots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_render_plots_stage(tmp_path: Path, render_stage, capsys) -> None:
    out = tmp_path / "plots"
    args = ["--train-dir", str(tmp_path / "train"), "--base-prefix", str(tmp_path / "m/base"),
            "--eval-prefix", str(tmp_path / "m/eval"), "--out", str(out)]
    render_stage.main(args)                            # nothing there yet: no figure, no error
    assert "0 figures" in capsys.readouterr().out and not out.exists()
    write_train_dir(tmp_path / "train")
    for prefix in ("base", "eval"):
        write_json(cross_records("xquad-r", ["de", "en"]),
                   tmp_path / f"m/{prefix}_cross_lingual.json")
        write_json(per_language("xquad-r", {"de": 9.0}),
                   tmp_path / f"m/{prefix}_per_language.json")
    render_stage.main(args)
    assert "4 figures" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["heatmap_base.png", "heatmap_eval.png", "language_bias.png", "training.png"]
    assert all((out / n).read_bytes()[:8] == PNG_MAGIC for n in names)
