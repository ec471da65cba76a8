#!/usr/bin/env bash
# The README's `mtl benchmark` tables (issue 5), on real CoNLL-2003 and SQuAD v1.1 text from ../shared/data.
# Run on an otherwise idle machine: with other work on a 2-core CPU, torch's 2 threads fight over the cores and a
# step gets ~15x slower; then set THREADS=1 (the tables say which thread count they were measured with).
#
#   bash benchmarks/benchmark_tables.sh speed     # random-init distilbert-base / bert-base / MiniLM-L6, cpu preset
#   bash benchmarks/benchmark_tables.sh compare   # joint vs single-task models, MiniLM, real data, ~25 min here
#
# Results (JSON with the machine description, CSV with it in every row, Markdown tables, PNG chart) land in
# benchmarks/results/speed-cpu/ and benchmarks/results/joint-vs-single-minilm/.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
THREADS=${THREADS:-2}
DATA=(--ner-train "$SHARED/data/conll2003/train.txt" --qa-train "$SHARED/data/squad/dev-v1.1.json"
      --qa-valid "$SHARED/data/squad/dev-v1.1.json" --set qa_train_articles=5: --set qa_valid_articles=0:5)

case "${1:-}" in
  speed)
    # Speed does not depend on the weights: every backbone is built from its config (shipped with mtl, no Hub)
    # and reads the same token ids (MiniLM's uncased WordPiece, the vocabulary distilbert and bert share).
    # Inputs: CoNLL-2003 train/test sentences, SQuAD dev questions (articles 5- train, 0-4 inference).
    out=benchmarks/results/speed-cpu
    mtl benchmark --random-init --preset cpu -b distilbert-base-uncased -b bert-base-uncased -b minilm \
      "${DATA[@]}" --ner-valid "$SHARED/data/conll2003/test.txt" \
      --set ner_train_size=2000 --set qa_train_size=1000 --set "threads=$THREADS" \
      --out "$out" --plot "$out/speed.png"
    ;;
  compare)
    # The seed's quick mode is 2,000 NER + 5,000 QA examples, 2 epochs; here 2,000 NER + 2,500 QA questions,
    # 2 epochs, NER 128 / QA 384 (stride 128), batch 16, lr 3e-4 (MiniLM's rate): the joint model, then one
    # model per task on the same data, epochs, batches and seed; validation on CoNLL-2003 valid and SQuAD
    # dev articles 0-4 (1,877 questions; training uses articles 5-47).
    out=benchmarks/results/joint-vs-single-minilm
    mtl benchmark -b minilm --compare single-task "${DATA[@]}" --ner-valid "$SHARED/data/conll2003/valid.txt" \
      --set ner_train_size=2000 --set qa_train_size=2500 --epochs 2 --batch-size 16 --lr 3e-4 \
      --set max_length=128 --set qa_max_length=384 --set doc_stride=128 --set "threads=$THREADS" \
      --out "$out" --plot "$out/joint-vs-single.png"
    ;;
  *)
    echo "usage: bash benchmarks/benchmark_tables.sh speed|compare" >&2
    exit 2
    ;;
esac
