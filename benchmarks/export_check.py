"""The Hugging Face exports of a model trained on real data, against mtl itself (issue 15's checks):

- NER: `pipeline("token-classification", aggregation_strategy="first")` over the export and
  `mtl predict-ner --precision fp32` on 1,000 CoNLL-2003 test sentences: the same entity spans and types?
- QA: the export's start/end logits and mtl's on 300 SQuAD evaluation questions (articles 0-4), each as the
  tokenizer encodes the pair (its token_type_ids included), max abs difference over real tokens;
- classification: the export's logits and mtl's on 300 BANKING77 test texts.

  python benchmarks/export_check.py --model runs/export-minilm/last --shared ../shared
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine  # noqa: E402

from mtlcli.data.readers import read_cls, read_ner, read_qa  # noqa: E402
from mtlcli.export import export  # noqa: E402
from mtlcli.inference.predictor import Predictor  # noqa: E402
from mtlcli.model import load_model  # noqa: E402


def ner_check(model_dir: Path, hf_dir: Path, sentences: list[str]) -> dict:
    from transformers import pipeline

    ours = Predictor(model_dir, device="cpu", precision="fp32").ner(sentences)
    tagger = pipeline("token-classification", model=str(hf_dir), aggregation_strategy="first", device="cpu")
    theirs = tagger(sentences, batch_size=32)
    differ = []
    for i, (mine, found) in enumerate(zip(ours, theirs)):
        a = [(e.start, e.end, e.type) for e in mine.entities]
        b = [(e["start"], e["end"], e["entity_group"]) for e in found]
        if a != b:
            differ.append({"text": sentences[i], "mtl": a, "pipeline": b})
    return {
        "sentences": len(sentences),
        "same_entities": len(sentences) - len(differ),
        "entities": sum(len(r.entities) for r in ours),
        "differences": differ[:20],
    }


def logits_check(model, hf_model, tokenizer, task: str, first, second=None, max_length: int = 128) -> dict:
    """Max abs difference of the export's logits and mtl's, input by input, on the real tokens."""
    worst = {}
    with torch.no_grad():
        for i in range(len(first)):
            pair = (first[i], second[i]) if second else (first[i],)
            encoded = tokenizer(
                *pair, truncation="only_second" if second else True, max_length=max_length, return_tensors="pt"
            )
            inputs = {k: v for k, v in encoded.items() if k != "token_type_ids" or model.spec.segment_ids}
            ours, theirs = model(task, **inputs), hf_model(**inputs)
            names = ("start_logits", "end_logits") if task == "qa" else ("logits",)
            for name in names:
                diff = float((ours[name] - getattr(theirs, name)).abs().max())
                worst[name] = max(worst.get(name, 0.0), diff)
    return {"inputs": len(first), "max_abs_diff": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/export_check.json"))
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    shared = Path(args.shared)
    model, tokenizer = load_model(args.model)
    result = {"command": f"python benchmarks/export_check.py --model {args.model}", "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        hf = Path(tmp) / "hf"
        export(args.model, "hf", hf, task="all")
        sentences = [" ".join(ex.tokens) for ex in read_ner(shared / "data/conll2003/test.txt").examples[:1000]]
        result["ner"] = ner_check(Path(args.model), hf / "ner", sentences)
        questions = read_qa(shared / "data/squad/dev-v1.1.json").examples
        titles = list(dict.fromkeys(q.title for q in questions))[:5]
        questions = [q for q in questions if q.title in titles][:300]
        qa_model = AutoModelForQuestionAnswering.from_pretrained(hf / "qa").eval()
        result["qa"] = logits_check(
            model,
            qa_model,
            tokenizer,
            "qa",
            [q.question for q in questions],
            [q.context for q in questions],
            model.spec.qa_max_length,
        )
        texts = [ex.text for ex in read_cls(shared / "data/banking77/test.csv").examples[:300]]
        cls_model = AutoModelForSequenceClassification.from_pretrained(hf / "cls").eval()
        result["cls"] = logits_check(model, cls_model, tokenizer, "cls", texts, max_length=model.spec.max_length)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
