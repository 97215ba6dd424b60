"""The "Evaluation" section of a model card, from an evaluate report (``metrics/eval.json``).

Kept apart from :mod:`hybrid_retrieval.model_card` so that the train stage, which writes the
card without metrics, does not depend on the evaluation modules.
"""

from __future__ import annotations

from typing import Any, Mapping

from .headline import SETTINGS

#: the evaluation sets of ``metrics/eval.json`` -> their licence (for the card's table).
EVALUATION_LICENCES = {"xquad-r": "CC BY-SA 4.0", "mlqa-r": "CC BY-NC 4.0",
                       "debian-faq-r": "Debian FAQ copyright (debian/faq/COPYRIGHT)",
                       "debian-install-r": "GPL-2 (debian/installation-guide/COPYRIGHT)"}


def _interval(block: Mapping[str, Any], metric: str) -> str:
    value = block[metric]
    ci = block.get("ci", {}).get(metric)
    return f"{value:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]" if ci else f"{value:.3f}"


def evaluation_section(metrics: Mapping[str, Any],
                       base_metrics: Mapping[str, Any] | None = None) -> list[str]:
    """The card's "Evaluation" lines: headline mAP and XTREME-R score with 95% CIs per dataset
    of ``metrics`` (``metrics/eval.json``), after those of ``base_metrics`` (``base.json``)."""
    lines = ["## Evaluation", ""]
    lines += ["Zero-shot LAReQA-style retrieval (Roy et al. 2020): mAP per setting with a 95% "
              "bootstrap CI over question groups; *multi* is the multilingual pool, and its "
              "mAP@20 is the XTREME-R score.", "",
              "| model | dataset | mono mAP | cross mAP | multi mAP | XTREME-R (multi mAP@20) |",
              "|---|---|---|---|---|---|"]
    for label, block in (("base", base_metrics), ("this model", metrics)):
        for dataset in sorted(d for d in (block or {}) if isinstance(block[d], dict)
                              and all(s in block[d] for s in SETTINGS)):
            cells = [_interval(block[dataset][s], "map") for s in SETTINGS]
            cells.append(_interval(block[dataset]["multi"], "map@20"))
            lines.append(f"| {label} | {dataset} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {d}: {licence}" for d, licence in EVALUATION_LICENCES.items() if d in metrics]
    run = metrics.get("run", {})
    if run:
        lines.append(f"- evaluated in {run.get('precision', '?')} on {run.get('cpu', '?')} "
                     f"({run.get('isa', '?')})")
    return lines + [""]
