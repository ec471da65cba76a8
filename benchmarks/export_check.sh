#!/usr/bin/env bash
# Issue 15's checks on a model trained on real data: the Hugging Face exports against mtl's own predictions.
#   bash benchmarks/export_check.sh train   # MiniLM on 2,000 CoNLL-2003 + 2,000 SQuAD (dev articles 5-) + 2,000 BANKING77, 1 epoch
#   bash benchmarks/export_check.sh check   # export, then compare (results in benchmarks/results/export_check.json)
# Needs ../shared beside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
RUN=${RUN:-runs/export-minilm}
case "${1:-}" in
  train)
    mtl train --backbone "$SHARED/models/minilm-l6-h384-uncased" \
      --ner-train "$SHARED/data/conll2003/train.txt" --ner-valid "$SHARED/data/conll2003/valid.txt" \
      --qa-train "$SHARED/data/squad/dev-v1.1.json" --qa-valid "$SHARED/data/squad/dev-v1.1.json" \
      --cls-train "$SHARED/data/banking77/train.csv" --cls-valid "$SHARED/data/banking77/test.csv" \
      --set qa_train_articles=5: --set qa_valid_articles=0:5 --set ner_train_size=2000 --set qa_train_size=2000 \
      --set cls_train_size=2000 --set eval_strategy=end --set segment_ids=true --epochs 1 --batch-size 16 --lr 3e-4 \
      --output-dir "$RUN" --overwrite ;;
  check)
    python benchmarks/export_check.py --model "$RUN/last" --shared "$SHARED" ;;
  *) echo "usage: bash benchmarks/export_check.sh train|check" >&2; exit 2 ;;
esac
