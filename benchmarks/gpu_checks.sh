#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go (a lent GPU is short-lived): the CUDA + mixed-precision paths of
# train, evaluate and predict, the random-init speed table on the GPU, and issue 10's strategy table at the
# seed's quick-mode budget (as many runs as fit in STRATEGY_SECONDS; `strategies.py` resumes the rest).
#
#   bash benchmarks/gpu_checks.sh [SHARED] [OUT]       # SHARED holds data/ and models/ as ../shared does
#
# MTL overrides the command (e.g. "python3 -m mtlcli" where mtl is not installed).
set -uo pipefail
cd "$(dirname "$0")/.."
SHARED=${1:-../shared}
OUT=${2:-benchmarks/results/gpu}
MTL=${MTL:-mtl}
STRATEGY_SECONDS=${STRATEGY_SECONDS:-300}
MINILM=$SHARED/models/minilm-l6-h384-uncased
mkdir -p "$OUT"
step() { echo; echo "=== $* ($(date +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__,
  torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())'

step "demo training on the GPU (precision auto: bf16 AMP where supported)"
time $MTL train --preset demo --backbone "$MINILM" --device cuda \
  -o runs/gpu-demo --overwrite --json > "$OUT/demo_train.jsonl"
tail -n 1 "$OUT/demo_train.jsonl"

step "demo training in fp16 AMP (GradScaler path)"
$MTL train --preset demo --backbone "$MINILM" --device cuda --precision fp16 --epochs 1 -o runs/gpu-demo-fp16 \
  --overwrite --json | tail -n 1

step "evaluate and predict on the GPU"
$MTL evaluate runs/gpu-demo/last --ner @demo/wikigold_valid.conll --qa @demo/squad_valid.json --device cuda \
  --precision bf16 --json > "$OUT/demo_eval.json" && python3 -c "import json; m = json.load(open('$OUT/demo_eval.json'));
print('NER F1', round(m['ner']['f1'], 4), 'QA EM', round(m['qa']['exact_match'], 2), 'F1', round(m['qa']['f1'], 2))"
head -n 200 "$SHARED/data/conll2003/test.txt" | awk 'NF {printf "%s ", $1} !NF {print ""}' | grep -v DOCSTART > /tmp/gpu_texts.txt
for batch in 1 64; do
  $MTL predict-ner runs/gpu-demo/last --file /tmp/gpu_texts.txt --format jsonl --device cuda --batch-size $batch \
    > "/tmp/gpu_ner_$batch.jsonl"
done
cmp /tmp/gpu_ner_1.jsonl /tmp/gpu_ner_64.jsonl && echo "predict-ner on cuda: batch 1 and 64 identical ($(wc -l < /tmp/gpu_ner_1.jsonl) texts)"
echo "Nikola Tesla was born in 1856 in Smiljan and died in New York City." |
  $MTL predict-qa runs/gpu-demo/last --context - -q "Where did Tesla die?" --device cuda --format jsonl

step "speed table: random-init distilbert-base / bert-base / MiniLM-L6 on the GPU"
$MTL benchmark --random-init --preset colab-t4 -b distilbert-base-uncased -b bert-base-uncased -b "$MINILM" \
  --tokenizer "$MINILM" --device cuda \
  --ner-train "$SHARED/data/conll2003/train.txt" --ner-valid "$SHARED/data/conll2003/test.txt" \
  --qa-train "$SHARED/data/squad/dev-v1.1.json" --qa-valid "$SHARED/data/squad/dev-v1.1.json" \
  --set qa_train_articles=5: --set qa_valid_articles=0:5 --set ner_train_size=2000 --set qa_train_size=1000 \
  --out "$OUT/speed"

step "strategy table at the quick-mode budget (${STRATEGY_SECONDS} s)"
timeout "$STRATEGY_SECONDS" python3 benchmarks/strategies.py run --budget quick --shared "$SHARED" --device cuda \
  --skip-pairing --out "$OUT/strategies-quick"
python3 benchmarks/strategies.py table --budget quick --out "$OUT/strategies-quick"
