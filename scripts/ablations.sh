#!/usr/bin/env bash
# Paired-bootstrap comparisons of the committed default run, the base encoder and the finished
# ablation experiments (README "Ablations"); writes metrics/ablations/*.json, which
# `python scripts/results_tables.py --update README.md` renders. Needs the experiments
#   qa-only (-S domain_ratio=0), domain-mono (-S domain.cross_lingual=false),
#   mix0 (-S mix_ratio=0), mix1 (-S mix_ratio=1)
# queued and run as in README "Sweep over mix_ratio (and domain_ratio)", and HEAD = the default run.
set -euo pipefail
cd "$(dirname "$0")/.."
# zero-shot language groups: eval languages with Debian Reference text but no QA pairs (QA: en, pt)
# versus eval languages with neither
DOMAIN_LANGS="de es fr id it ja zh"
OTHER_LANGS="ar el hi ko nl ru th tr vi"
out=metrics/ablations
mkdir -p "$out"
compare() { python scripts/compare.py "$@" > /dev/null; }
compare HEAD qa-only --path-a metrics/base_per_query.parquet \
    --label "QA only (domain_ratio 0) - base encoder" --json-out "$out/1-qa-only-vs-base.json"
for group in all domain other; do
  case $group in
    all) langs=(); suffix="-a-all" ;;
    domain) langs=(--languages $DOMAIN_LANGS); suffix="-b-domain-langs" ;;
    other) langs=(--languages $OTHER_LANGS); suffix="-c-other-langs" ;;
  esac
  compare qa-only domain-mono "${langs[@]}" --label "+ monolingual domain text - QA only" \
      --json-out "$out/2-domain-mono-vs-qa-only$suffix.json"
  compare qa-only HEAD "${langs[@]}" --label "+ mono & aligned domain (default) - QA only" \
      --json-out "$out/3-default-vs-qa-only$suffix.json"
done
compare domain-mono HEAD --label "+ aligned domain pairs (default) - mono domain only" \
    --json-out "$out/4-default-vs-domain-mono.json"
compare HEAD mix0 --label "mix_ratio 0 (all cross-lingual) - 0.5 (default)" \
    --json-out "$out/5-mix0-vs-default.json"
compare HEAD mix1 --label "mix_ratio 1 (all monolingual) - 0.5 (default)" \
    --json-out "$out/6-mix1-vs-default.json"
ls "$out"
