#!/usr/bin/env bash
# The seed's quick mode on real data (issue 9): MiniLM, first 2,000 CoNLL-2003 train sentences +
# first 5,000 questions of the SQuAD training split (dev articles 5-47), 2 epochs, NER 128, QA 384/128,
# batch 16; validation on the full CoNLL-2003 valid set and the 1,877 questions of articles 0-4.
# Usage: bash benchmarks/quick_mode.sh [OUTPUT_DIR]   (needs ../shared beside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${1:-runs/quick-minilm}
mtl train --preset quick --backbone "$SHARED/models/minilm-l6-h384-uncased" \
  --ner-train "$SHARED/data/conll2003/train.txt" --ner-valid "$SHARED/data/conll2003/valid.txt" \
  --qa-train "$SHARED/data/squad/dev-v1.1.json" --qa-valid "$SHARED/data/squad/dev-v1.1.json" \
  --set qa_train_articles=5: --set qa_valid_articles=0:5 \
  --set max_length=128 --set qa_max_length=384 --set doc_stride=128 \
  --batch-size 16 --lr 3e-4 --output-dir "$OUT" --overwrite
mkdir -p benchmarks/results/quick-minilm
cp "$OUT/metrics.jsonl" "$OUT/training_metrics.csv" "$OUT/train_config.toml" benchmarks/results/quick-minilm/
