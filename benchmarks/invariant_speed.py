"""What batch invariance costs NER inference, with row spans or with fixed row blocks (mtlcli.invariant).

Row spans (a shortest span to MAX_ROWS rows per GEMM, used where the machine's check allows it) against fixed
blocks of rows, the last one zero-padded, so that the kernel always sees the same M: a large block wastes
its padding (each batch's last block), a small one runs the GEMM at a less efficient M. For each mode: `predict-ner` throughput
(the whole job, raw text in, entities out) on the 1,000 CoNLL-2003 test sentences of predict_speed.py,
the raw encoder forward on the same batches (the ceiling), the rows the Linear layers compute against the
rows of the padded batches, and whether batch size 1 and 128 give the same outputs. Alternating rounds.

    python benchmarks/invariant_speed.py --model runs/quick-minilm/last
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from predict_speed import compare_ner, machine, ner_features_of, padded_batches, raw_forward, timed  # noqa: E402

from mtlcli.data.readers import read_ner  # noqa: E402
from mtlcli.devices import autocast_for  # noqa: E402
from mtlcli.fileio import write_atomic  # noqa: E402
from mtlcli.inference import invariant  # noqa: E402
from mtlcli.inference.predictor import Predictor  # noqa: E402
from mtlcli.model import load_model  # noqa: E402


def computed_rows(mode: str, rows: int, shortest: int) -> int:
    """Rows the Linear layers multiply for a batch of `rows` token rows, padding included (spans: the encoder's
    shortest span on this machine)."""
    if mode != "spans":
        block = int(mode.split()[-1])
        return -(-rows // block) * block
    return invariant.span_rows(rows, shortest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/quick-minilm/last")
    parser.add_argument("--conll", default=str(ROOT.parent / "shared/data/conll2003/test.txt"))
    parser.add_argument("--blocks", default="256,1024", help="fixed block sizes to compare with the row spans")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/invariant_speed.json"))
    args = parser.parse_args()

    texts = [" ".join(s.tokens) for s in read_ner(args.conll).examples[:1000]]
    modes = ["spans"] + [f"blocks of {b}" for b in args.blocks.split(",")]
    check = invariant.shortest_span

    def mode(name: str):  # the span check answers for "spans" (where the machine allows) and no for blocks
        invariant.shortest_span = check if name == "spans" else (lambda *shape: None)

    def predictor(name: str, batch_size: int) -> Predictor:
        block = None if name == "spans" else int(name.split()[-1])
        return Predictor(args.model, device="cpu", precision=args.precision, batch_size=batch_size, block_rows=block)

    predictors = {name: predictor(name, args.batch_size) for name in modes}
    plain, tokenizer = load_model(args.model)
    autocast = autocast_for("cpu", args.precision)
    batches = padded_batches(
        predictors["spans"].model,
        ner_features_of(predictors["spans"], texts),
        args.batch_size,
        tokenizer.pad_token_id or 0,
    )
    padded_rows = sum(ids.numel() for ids, _ in batches)
    for name in modes:  # warm-up: oneDNN builds its kernels for each shape once
        mode(name)
        predictors[name].ner(texts[:200])
    raw_forward(plain, "ner", batches, autocast)

    seconds = {name: [] for name in modes}
    raw = []
    for _ in range(args.rounds):  # alternating, so that a slow moment of the machine hits everyone
        for name in modes:
            mode(name)
            seconds[name].append(timed(predictors[name].ner, texts)[0])
        raw.append(timed(raw_forward, plain, "ner", batches, autocast)[0])
    raw_s = min(raw)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.precision]
    report = {
        "command": " ".join(sys.argv),
        "machine": machine(),
        "model": args.model,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "sentences": len(texts),
        "padded_rows": padded_rows,
        "shortest_span_here": {f"{k}x{n}": check(k, n, dtype) for k, n in ((384, 384), (384, 1536), (1536, 384))},
        "raw_forward_sentences_per_s": round(len(texts) / raw_s, 1),
        "modes": {},
    }
    for name in modes:
        best = min(seconds[name])
        mode(name)
        shortest = max((m for m in report["shortest_span_here"].values() if m), default=invariant.MIN_ROWS)
        linear_rows = sum(computed_rows(name, ids.numel(), shortest) for ids, _ in batches)
        report["modes"][name] = {
            "sentences_per_s": round(len(texts) / best, 1),
            "ratio_vs_raw_forward": round(raw_s / best, 3),
            "linear_rows_vs_padded_rows": round(linear_rows / padded_rows, 3),
            "bs1_vs_bs128_on_300": compare_ner(predictor(name, 1).ner(texts[:300]), predictors[name].ner(texts[:300])),
        }
        print(
            f"{name:15s}: {len(texts) / best:7.1f} sentences/s = {raw_s / best:.3f}x the raw forward "
            f"({len(texts) / raw_s:.1f}/s); Linear rows {linear_rows / padded_rows:.2f}x the padded rows; "
            f"bs 1 vs 128: {report['modes'][name]['bs1_vs_bs128_on_300']}",
            flush=True,
        )
    mode("spans")
    write_atomic(args.output, json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
