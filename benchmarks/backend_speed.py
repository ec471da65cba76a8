"""Prediction backends of one trained model, same inputs, same run: PyTorch fp32, bf16 (where the CPU has it),
dynamic int8 (`--quantize`), and its ONNX exports (fp32, int8) run by onnxruntime.

  speed:    predict-ner on the first 1,000 CoNLL-2003 test sentences, predict-qa on the first 300 evaluation
            questions (SQuAD v1.1 dev articles 0-4), the predictor's default batch sizes, best of --rounds
            alternating rounds; the ratio to PyTorch fp32;
  outputs:  texts whose entities (spans and types) equal PyTorch fp32's, max abs difference of the QA logits;
  accuracy: entity F1 on all of CoNLL-2003 test, EM/F1 on the 1,877 evaluation questions (the predict path's
            model, tokenization, windows and decoding: the task's own evaluate).

    python benchmarks/backend_speed.py --model runs/export-minilm/last
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/backend_speed.py --model ... --tag avx2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine  # noqa: E402

from mtlcli import tasks  # noqa: E402
from mtlcli.data.readers import read_ner, read_qa  # noqa: E402
from mtlcli.devices import cpu_has_native_bf16  # noqa: E402
from mtlcli.export import export  # noqa: E402
from mtlcli.inference.predictor import Predictor  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def accuracy(predictor: Predictor, ner_examples, qa_examples) -> dict:
    scores = {}
    for name, examples in (("ner", ner_examples), ("qa", qa_examples)):
        task = tasks.get(name)
        features = task.evaluation_features(examples, predictor.tokenizer, predictor.spec, [])
        batch = 128 if name == "ner" else 32
        scores[name] = task.evaluate(
            predictor.model, examples, features, batch, predictor.device, predictor.autocast, {}
        ).metrics
    return {
        "ner_entity_f1": round(100 * scores["ner"]["f1"], 2),
        "qa_exact_match": round(scores["qa"]["exact_match"], 2),
        "qa_f1": round(scores["qa"]["f1"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tag", default="", help="suffix of the results file (e.g. avx2)")
    args = parser.parse_args()
    shared = Path(args.shared)
    test = read_ner(shared / "data/conll2003/test.txt").examples
    texts = [" ".join(ex.tokens) for ex in test[:1000]]
    questions = read_qa(shared / "data/squad/dev-v1.1.json").examples
    titles = list(dict.fromkeys(q.title for q in questions))[:5]
    questions = [q for q in questions if q.title in titles]
    asked = questions[:300]
    info = machine()
    log(f"machine: {info}")
    result = {
        "command": "python benchmarks/backend_speed.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "model": args.model,
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        backends = {"torch fp32": lambda: Predictor(args.model, device="cpu", precision="fp32")}
        if cpu_has_native_bf16():
            backends["torch bf16"] = lambda: Predictor(args.model, device="cpu", precision="bf16")
        backends["torch int8 (--quantize)"] = lambda: Predictor(args.model, device="cpu", quantize=True)
        for name, quantize in (("onnx fp32", None), ("onnx int8", "int8")):
            out = Path(tmp) / name.replace(" ", "-")
            _, report = export(args.model, "onnx", out, quantize=quantize)
            result[f"{name} export"] = report
            backends[name] = lambda out=out: Predictor(out)
        loaded = {name: make() for name, make in backends.items()}
        for predictor in loaded.values():  # warm-up: kernels, caches
            predictor.ner(texts[:64])
            predictor.qa([q.question for q in asked[:8]], [q.context for q in asked[:8]])
        times = {name: {"ner": float("inf"), "qa": float("inf")} for name in loaded}
        outputs = {}
        for _ in range(args.rounds):  # alternating: a drifting machine weighs on every backend alike
            for name, predictor in loaded.items():
                t, outputs[name, "ner"] = timed(lambda p=predictor: p.ner(texts))
                times[name]["ner"] = min(times[name]["ner"], t)
                t, outputs[name, "qa"] = timed(
                    lambda p=predictor: p.qa([q.question for q in asked], [q.context for q in asked])
                )
                times[name]["qa"] = min(times[name]["qa"], t)
        base = "torch fp32"
        for name, predictor in loaded.items():
            same_entities = sum(
                [(e.start, e.end, e.type) for e in a.entities] == [(e.start, e.end, e.type) for e in b.entities]
                for a, b in zip(outputs[name, "ner"], outputs[base, "ner"])
            )
            same_answers = sum(
                a[0].start == b[0].start and a[0].end == b[0].end
                for a, b in zip(outputs[name, "qa"], outputs[base, "qa"])
            )
            row = {
                "ner_sentences_per_s": round(len(texts) / times[name]["ner"], 1),
                "qa_questions_per_s": round(len(asked) / times[name]["qa"], 2),
                "ner_speed_vs_torch_fp32": round(times[base]["ner"] / times[name]["ner"], 2),
                "qa_speed_vs_torch_fp32": round(times[base]["qa"] / times[name]["qa"], 2),
                "texts_with_the_same_entities_as_torch_fp32": f"{same_entities}/{len(texts)}",
                "questions_with_the_same_answer_as_torch_fp32": f"{same_answers}/{len(asked)}",
            }
            log(f"{name}: {json.dumps(row)}")
            row |= accuracy(predictor, test, questions)
            log(f"{name}: accuracy {json.dumps({k: v for k, v in row.items() if 'f1' in k or 'exact' in k})}")
            result["backends"][name] = row
    out = ROOT / f"benchmarks/results/backend_speed{'-' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
