"""Inference speed of `mtl predict-ner` / `predict-qa` against the transformers peers, in one process.

Same model weights and the same inputs for everyone:
  NER: the first 1,000 CoNLL-2003 test sentences as raw text (tokens joined by spaces);
       peer: transformers `pipeline("token-classification", aggregation_strategy="simple")`.
  QA:  the first 300 SQuAD v1.1 dev questions;
       peer: the transformers-5 way, as the question-answering pipeline is gone: run_qa.py's validation
       features + `Trainer.predict` + run_qa's n-best post-processing (utils_qa.postprocess_qa_predictions).
  Ceiling: the raw encoder forward (+ head) on exactly our batches, pre-tokenized and pre-padded.

Every contender is swept over batch sizes once; the best batch size of each is then timed again in
alternating rounds and its best time is kept. Ratios are printed and written with the machine description.
Also measured: outputs with batch size 1 against batched, bf16 and int8 (--quantize) against fp32, and
accuracy on the gold labels (seqeval entity F1, SQuAD EM/F1) for each precision.

    .venv/bin/python benchmarks/predict_speed.py --model runs/demo/last
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mtlcli import metrics  # noqa: E402  (after the sys.path lines: runs from a checkout)
from mtlcli.data.readers import read_ner, read_qa  # noqa: E402
from mtlcli.devices import autocast_for, resolve_precision  # noqa: E402
from mtlcli.inference.predictor import Predictor  # noqa: E402


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def machine() -> dict:
    import transformers
    from machine import (
        machine as describe,  # benchmarks/machine.py: the description every benchmark stores
    )

    return describe() | {"transformers": transformers.__version__}


# --- peers built from the very same weights ------------------------------------------------------------------


def peer_model(ours, head: str):
    """A transformers *ForTokenClassification / *ForQuestionAnswering holding our encoder and head weights."""
    from transformers import (
        AutoConfig,
        AutoModelForQuestionAnswering,
        AutoModelForTokenClassification,
    )

    spec = ours.spec
    config = AutoConfig.for_model(**spec.backbone_config)
    if head == "ner":
        config.num_labels = len(spec.labels["ner"])
        config.id2label = dict(enumerate(spec.labels["ner"]))
        config.label2id = {label: i for i, label in enumerate(spec.labels["ner"])}
        model = AutoModelForTokenClassification.from_config(config)
        head_name = "classifier"
    else:
        model = AutoModelForQuestionAnswering.from_config(config)
        head_name = "qa_outputs"
    prefix = model.base_model_prefix
    base_keys = set(getattr(model, prefix).state_dict())
    state = {
        f"{prefix}.{k[len('encoder.') :]}": v
        for k, v in ours.state_dict().items()
        if k.startswith("encoder.") and k[len("encoder.") :] in base_keys
    }
    state.update({f"{head_name}.{k.split('.')[-1]}": v for k, v in ours.heads[head].state_dict().items()})
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    assert not missing and not unexpected, (missing, unexpected)
    return model.eval()


def run_ner_pipeline(pipe, texts, batch_size):
    return pipe(texts, batch_size=batch_size)


def qa_validation_features(tokenizer, questions, contexts, max_length, stride, pad_to_max_length):
    """run_qa.py's prepare_validation_features (question first, truncate the context, keep offsets)."""
    encoded = tokenizer(
        [q.lstrip() for q in questions],
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length" if pad_to_max_length else False,
    )
    rows, example_ids, offsets = [], [], []
    for i in range(len(encoded["input_ids"])):
        sequence_ids = encoded.sequence_ids(i)
        example_ids.append(encoded["overflow_to_sample_mapping"][i])
        offsets.append([o if sequence_ids[k] == 1 else None for k, o in enumerate(encoded["offset_mapping"][i])])
        # no token_type_ids: mtl trains and predicts without segment ids, so the same model gets the same inputs
        rows.append({k: encoded[k][i] for k in ("input_ids", "attention_mask")})
    return rows, example_ids, offsets


def postprocess_qa_predictions(
    contexts, example_ids, offsets, all_start, all_end, n_best_size=20, max_answer_length=30
):
    """utils_qa.postprocess_qa_predictions (version_2_with_negative=False), as run_qa.py calls it."""
    features_per_example = collections.defaultdict(list)
    for i, example in enumerate(example_ids):
        features_per_example[example].append(i)
    answers = []
    for example, context in enumerate(contexts):
        candidates = []
        for f in features_per_example[example]:
            start_logits, end_logits, offset_mapping = all_start[f], all_end[f], offsets[f]
            start_indexes = np.argsort(start_logits)[-1 : -n_best_size - 1 : -1].tolist()
            end_indexes = np.argsort(end_logits)[-1 : -n_best_size - 1 : -1].tolist()
            for s in start_indexes:
                for e in end_indexes:
                    if (
                        s >= len(offset_mapping)
                        or e >= len(offset_mapping)
                        or offset_mapping[s] is None
                        or len(offset_mapping[s]) < 2
                        or offset_mapping[e] is None
                        or len(offset_mapping[e]) < 2
                    ):
                        continue
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates.append(
                        {
                            "offsets": (offset_mapping[s][0], offset_mapping[e][1]),
                            "score": start_logits[s] + end_logits[e],
                        }
                    )
        candidates = sorted(candidates, key=lambda x: x["score"], reverse=True)[:n_best_size]
        for c in candidates:
            c["text"] = context[c["offsets"][0] : c["offsets"][1]]
        if not candidates:
            candidates = [{"text": "empty", "score": 0.0}]
        scores = np.array([c.pop("score") for c in candidates])
        probs = np.exp(scores - np.max(scores))
        probs /= probs.sum()
        answers.append(candidates[0]["text"])
    return answers


def run_qa_trainer(
    model, tokenizer, questions, contexts, max_length, stride, max_answer_length, batch_size, pad_to_max_length
):
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    rows, example_ids, offsets = qa_validation_features(
        tokenizer, questions, contexts, max_length, stride, pad_to_max_length
    )
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_eval_batch_size=batch_size,
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            dataloader_num_workers=0,
        )
        collator = default_data_collator if pad_to_max_length else DataCollatorWithPadding(tokenizer)
        trainer = Trainer(model=model, args=args, data_collator=collator)
        out = trainer.predict(rows)
    start_logits, end_logits = out.predictions
    # unpadded rows come back padded to the longest of all batches with -100: cut each to its own length
    starts = [start_logits[i][: len(r["input_ids"])] for i, r in enumerate(rows)]
    ends = [end_logits[i][: len(r["input_ids"])] for i, r in enumerate(rows)]
    return postprocess_qa_predictions(contexts, example_ids, offsets, starts, ends, 20, max_answer_length)


# --- the ceiling ---------------------------------------------------------------------------------------------


def padded_batches(model, features, batch_size, pad_id, file_order=False):
    """Exactly the (input_ids, attention_mask) batches `model` computes; or file-order batches padded to the longest."""
    import torch

    from mtlcli.inference.batching import pad_rows

    if file_order:
        n = len(features)
        plan = [(list(range(i, min(i + batch_size, n))), None) for i in range(0, n, batch_size)]
    else:
        plan = model.batch_plan(features.lengths(), batch_size)
    batches = [pad_rows(features, rows, pad_id, width) for rows, width in plan]
    return [(torch.from_numpy(b["input_ids"]), torch.from_numpy(b["attention_mask"])) for b in batches]


def raw_forward(model, task, batches, autocast):
    import torch

    with torch.inference_mode(), autocast():
        for input_ids, mask in batches:
            model(task, input_ids=input_ids, attention_mask=mask)


def ner_features_of(predictor, texts):
    from mtlcli.data.examples import NerExample
    from mtlcli.tasks.ner import split_words
    from mtlcli.tasks.ner import word_features as ner_features

    words = [split_words(t, predictor.tokenizer) for t in texts]
    examples = [NerExample(str(i), [w for w, _ in ws], ["O"] * len(ws)) for i, ws in enumerate(words) if ws]
    return ner_features(examples, predictor.tokenizer, {"O": 0}, predictor.spec.max_length)


def qa_features_of(predictor, questions, contexts):
    from mtlcli.data.examples import QaExample
    from mtlcli.tasks.qa import window_features as qa_features

    examples = [QaExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
    return qa_features(examples, predictor.tokenizer, predictor.spec.qa_max_length, predictor.spec.doc_stride, False)


# --- comparisons ---------------------------------------------------------------------------------------------


def entity_keys(results):
    return [[(e.type, e.start, e.end) for e in r.entities] for r in results]


def compare_ner(a, b) -> dict:
    ka, kb = entity_keys(a), entity_keys(b)
    differ = sum(x != y for x, y in zip(ka, kb))
    scores = [abs(sa - sb) for ra, rb in zip(a, b) for sa, sb in zip(ra.scores, rb.scores)]
    return {"texts_differing": differ, "texts": len(a), "max_score_diff": max(scores, default=0.0)}


def compare_qa(a, b) -> dict:
    differ = sum((x[0].start, x[0].end) != (y[0].start, y[0].end) for x, y in zip(a, b))
    scores = [abs(x[0].score - y[0].score) for x, y in zip(a, b)]
    return {"answers_differing": differ, "questions": len(a), "max_score_diff": max(scores, default=0.0)}


def ner_f1(predictor, sentences) -> float:
    results = predictor.ner([" ".join(s.tokens) for s in sentences], pretokenized=True)
    return metrics.ner_metrics([s.tags for s in sentences], [r.tags for r in results])["f1"]


def qa_scores(examples, answers) -> dict:
    found = metrics.qa_metrics(
        {ex.id: a for ex, a in zip(examples, answers)}, {ex.id: [x.text for x in ex.answers] for ex in examples}
    )
    return {"exact_match": round(found["exact_match"], 2), "f1": round(found["f1"], 2)}


def with_batch(predictor, batch_size):
    predictor.batch_size = batch_size
    return predictor


# --- the written report ------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    m, ner, qa, d = report["machine"], report["ner"], report["qa"], report["default_precision"]
    precisions = [p for p in ("fp32", "bf16") if p in ner]

    def row(cells) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    def rule(n: int) -> str:
        return "|" + "---|" * n

    def label(p: str) -> str:
        return f"mtl {p}" + (" (default)" if p == d else "")

    lines = [
        "# Inference speed: mtl predict-ner / predict-qa against the transformers peers",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"transformers {m['transformers']}, Python {m['python']}, AVX512-BF16: {'yes' if m['avx512_bf16'] else 'no'}.  ",
        f"Model: `{report['model']}`; the peers get the very same weights (encoder and heads). One process: every "
        "contender is swept over batch sizes, then its best batch size is timed again in alternating rounds and "
        "the best time is kept. Throughput counts the whole job: raw text in, entities / answers with offsets out.",
        "",
        "## Ratios",
        "",
        row(["", *map(label, precisions), "target"]),
        rule(len(precisions) + 2),
        row(
            [
                'NER: mtl / `pipeline("token-classification", aggregation_strategy="simple")`',
                *(f"{ner[p]['ratio_vs_peer']:.2f}x" for p in precisions),
                ">= 2",
            ]
        ),
        row(
            [
                "NER: mtl / raw encoder forward on the same batches (same precision)",
                *(f"{ner[p]['ratio_vs_raw_forward']:.2f}x" for p in precisions),
                ">= 0.8",
            ]
        ),
        row(
            [
                "QA: mtl / run_qa.py features + `Trainer.predict` + n-best post-processing",
                *(f"{qa[p]['ratio_vs_peer']:.2f}x" for p in precisions),
                ">= 1.5",
            ]
        ),
        row(
            [
                "(NER: mtl / mtl's own batch-invariant forward on the same batches)",
                *(
                    f"{max(ner[p]['sentences_per_s'].values()) / ner[p]['mtl_forward_alone_same_batches_sentences_per_s']:.2f}x"
                    for p in precisions
                ),
                "",
            ]
        ),
        row(
            [
                "(QA: mtl / mtl's own batch-invariant forward on the same batches)",
                *(
                    f"{max(qa[p]['questions_per_s'].values()) / qa[p]['mtl_forward_alone_same_batches_questions_per_s']:.2f}x"
                    for p in precisions
                ),
                "",
            ]
        ),
        "",
        f"`--precision auto` is {d} on this machine; `--precision fp32` forces exact fp32. Both are batch-invariant "
        "(`mtlcli/inference/invariant.py`): the outputs are bitwise the same with any batch size (see the checks below).",
        "",
        f"## NER: {ner['inputs']} CoNLL-2003 test sentences, raw text (sentences/s)",
        "",
        row(["peer", *(f"bs {b}" for b in ner["peer"]["sentences_per_s"])]),
        rule(len(ner["peer"]["sentences_per_s"]) + 1),
        row([ner["peer"]["name"], *ner["peer"]["sentences_per_s"].values()]),
        "",
        row(
            [
                "mtl",
                *(f"bs {b}" for b in ner["fp32"]["sentences_per_s"]),
                "raw forward, same batches",
                "mtl's forward alone, same batches",
                "raw forward, file order, bs 32",
            ]
        ),
        rule(len(ner["fp32"]["sentences_per_s"]) + 4),
    ]
    for p in precisions:
        lines.append(
            row(
                [
                    p,
                    *ner[p]["sentences_per_s"].values(),
                    ner[p]["raw_forward_same_batches_sentences_per_s"],
                    ner[p]["mtl_forward_alone_same_batches_sentences_per_s"],
                    ner[p]["raw_forward_file_order_bs32_sentences_per_s"],
                ]
            )
        )
    lines += [
        "",
        f"Without batch invariance (bf16, bs 128): {ner.get('bf16_without_batch_invariance_bs128_sentences_per_s')} "
        f"sentences/s. int8 (`--quantize`, bs {ner['int8']['batch_size']}): {ner['int8']['sentences_per_s']} sentences/s.  ",
        "Entity F1 against the gold tags (seqeval; the file's tokens as words, `--pretokenized`): "
        + ", ".join(f"{k} {v:.4f}" for k, v in ner["gold_entity_f1"].items())
        + ".",
        "",
        f"## QA: {qa['inputs']} SQuAD v1.1 dev questions (questions/s; windows of {qa['max_length']} tokens, "
        f"stride {qa['doc_stride']}, {qa['fp32']['windows']} windows)",
        "",
        row(["peer configuration", "questions/s"]),
        rule(2),
        *(row([k, v]) for k, v in qa["peer"]["questions_per_s"].items()),
        "",
        row(
            [
                "mtl",
                *(f"bs {b}" for b in qa["fp32"]["questions_per_s"]),
                "raw forward, same batches",
                "mtl's forward alone, same batches",
            ]
        ),
        rule(len(qa["fp32"]["questions_per_s"]) + 3),
    ]
    for p in precisions:
        lines.append(
            row(
                [
                    p,
                    *qa[p]["questions_per_s"].values(),
                    qa[p]["raw_forward_same_batches_questions_per_s"],
                    qa[p]["mtl_forward_alone_same_batches_questions_per_s"],
                ]
            )
        )
    lines += [
        "",
        f"Without batch invariance (bf16, bs 32): {qa.get('bf16_without_batch_invariance_bs32_questions_per_s')} "
        f"questions/s. int8 (`--quantize`, bs {qa['int8']['batch_size']}): {qa['int8']['questions_per_s']} questions/s.  ",
        "SQuAD EM / F1 on these questions: "
        + ", ".join(f"{k} {v['exact_match']:.1f} / {v['f1']:.1f}" for k, v in qa["gold"].items())
        + ".",
        "",
        "## The same outputs?",
        "",
        row(["check", "NER (texts whose entities differ)", "QA (questions whose best answer differs)"]),
        rule(3),
    ]

    def cell(value) -> str:
        if isinstance(value, dict):
            differ = value.get("texts_differing", value.get("answers_differing"))
            total = value.get("texts", value.get("questions"))
            return f"{differ}/{total}, max score difference {value['max_score_diff']:.1e}"
        return str(value)

    for key in dict.fromkeys([*ner["checks"], *qa["checks"]]):
        lines.append(row([key, cell(ner["checks"].get(key, "")), cell(qa["checks"].get(key, ""))]))
    return "\n".join(lines) + "\n"


# --- main ----------------------------------------------------------------------------------------------------


def best_of(times: dict) -> tuple:
    key = min(times, key=lambda k: min(times[k]))
    return key, min(times[key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/demo/last")
    parser.add_argument("--conll", default=str(ROOT.parent / "shared/data/conll2003/test.txt"))
    parser.add_argument("--squad", default=str(ROOT.parent / "shared/data/squad/dev-v1.1.json"))
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="alternating timing rounds at the best batch sizes")
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes and inputs: a smoke test")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/predict_speed.json"))
    args = parser.parse_args()

    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from mtlcli.model import load_model

    hf_logging.set_verbosity_error()
    if args.quick:
        args.sentences, args.questions, args.rounds = min(args.sentences, 200), min(args.questions, 60), 1
    info = machine()
    log(f"machine: {info}")
    default_precision = resolve_precision("auto", "cpu")
    precisions = ["fp32"] + (["bf16"] if info["avx512_bf16"] else [])
    # mtl as the commands run it (one Predictor per precision), and the plain model for the peers and the ceiling
    ours = {p: Predictor(args.model, device="cpu", precision=p) for p in precisions}
    fast = Predictor(args.model, device="cpu", precision=precisions[-1], batch_invariant=False)
    int8 = Predictor(args.model, device="cpu", precision="fp32", quantize=True)
    plain, tokenizer = load_model(args.model)
    spec = plain.spec
    autocasts = {p: autocast_for("cpu", p) for p in precisions}
    pad_id = plain.encoder.config.pad_token_id or 0
    report: dict = {
        "machine": info,
        "model": args.model,
        "default_precision": default_precision,
        "command": " ".join([".venv/bin/python"] + sys.argv),
    }

    # ---------------- NER
    sentences = read_ner(args.conll).examples[: args.sentences]
    texts = [" ".join(s.tokens) for s in sentences]
    log(f"\nNER: {len(texts)} CoNLL-2003 test sentences, {sum(map(len, texts)):,} characters")
    peer = peer_model(plain, "ner")
    pipe = pipeline(
        "token-classification", model=peer, tokenizer=tokenizer, aggregation_strategy="simple", device="cpu"
    )
    with torch.inference_mode():  # the same weights: the same logits
        probe = tokenizer(texts[:4], padding=True, return_tensors="pt")
        diff = (peer(**probe).logits - plain("ner", probe["input_ids"], probe["attention_mask"])["logits"]).abs().max()
    assert float(diff) < 1e-4, f"peer and mtl disagree on the same weights: {float(diff)}"
    pipe(texts[:8], batch_size=8)  # warm-up
    for predictor in (*ours.values(), fast):
        with_batch(predictor, 64).ner(texts[:64])

    peer_sizes = [1, 8, 32] if args.quick else [1, 8, 32, 64]
    our_sizes = [64, 128] if args.quick else [32, 64, 128, 256]
    peer_times = {bs: [timed(run_ner_pipeline, pipe, texts, bs)[0]] for bs in peer_sizes}
    for bs, t in peer_times.items():
        log(f"  pipeline bs {bs:3d}: {len(texts) / t[0]:7.1f} sentences/s")
    our_times, our_results = {}, {}
    for p in precisions:
        for bs in our_sizes:
            t, our_results[(p, bs)] = timed(with_batch(ours[p], bs).ner, texts)
            our_times[(p, bs)] = [t]
            log(f"  mtl {p} bs {bs:3d}: {len(texts) / t:7.1f} sentences/s")
    fast_t = timed(with_batch(fast, 128).ner, texts)[0]
    log(f"  mtl {precisions[-1]} without batch invariance, bs 128: {len(texts) / fast_t:7.1f} sentences/s")
    # the rounds: the best batch size of each, alternating
    peer_bs = best_of(peer_times)[0]
    for _ in range(args.rounds):
        peer_times[peer_bs].append(timed(run_ner_pipeline, pipe, texts, peer_bs)[0])
        for p in precisions:
            bs = best_of({k: v for k, v in our_times.items() if k[0] == p})[0][1]
            our_times[(p, bs)].append(timed(with_batch(ours[p], bs).ner, texts)[0])
    peer_bs, peer_t = best_of(peer_times)
    ner = {
        "inputs": len(texts),
        "peer": {
            "name": 'pipeline("token-classification", aggregation_strategy="simple")',
            "best_batch_size": peer_bs,
            "sentences_per_s": {bs: round(len(texts) / min(t), 1) for bs, t in peer_times.items()},
        },
        "bf16_without_batch_invariance_bs128_sentences_per_s": round(len(texts) / fast_t, 1),
    }
    features = ner_features_of(ours["fp32"], texts)
    for p in precisions:
        (_, bs), t = best_of({k: v for k, v in our_times.items() if k[0] == p})
        batches = padded_batches(ours[p].model, features, bs, pad_id)
        raw_forward(plain, "ner", batches[:2], autocasts[p])
        raw_t = min(timed(raw_forward, plain, "ner", batches, autocasts[p])[0] for _ in range(args.rounds + 1))
        own_t = min(timed(raw_forward, ours[p].model, "ner", batches, autocasts[p])[0] for _ in range(args.rounds + 1))
        file_t = timed(
            raw_forward, plain, "ner", padded_batches(plain, features, 32, pad_id, file_order=True), autocasts[p]
        )[0]
        ner[p] = {
            "sentences_per_s": {b: round(len(texts) / min(v), 1) for (q, b), v in our_times.items() if q == p},
            "best_batch_size": bs,
            "raw_forward_same_batches_sentences_per_s": round(len(texts) / raw_t, 1),
            "mtl_forward_alone_same_batches_sentences_per_s": round(len(texts) / own_t, 1),
            "raw_forward_file_order_bs32_sentences_per_s": round(len(texts) / file_t, 1),
            "features_s": round(timed(ner_features_of, ours[p], texts)[0], 3),
            "total_s": round(t, 3),
            "ratio_vs_peer": round(peer_t / t, 2),
            "ratio_vs_raw_forward": round(raw_t / t, 2),
        }
        log(
            f"  mtl {p}: best bs {bs}: {len(texts) / t:.1f} sentences/s = {peer_t / t:.2f}x the pipeline (bs {peer_bs}), "
            f"{raw_t / t:.2f}x the raw forward on the same batches ({len(texts) / raw_t:.1f}/s; mtl's forward alone "
            f"{len(texts) / own_t:.1f}/s; file order bs 32 {len(texts) / file_t:.1f}/s)"
        )
    # the same outputs? batch size 1 against the best, bf16 and int8 against fp32, the peer; gold F1
    checks = {}
    for p in precisions:
        bs = ner[p]["best_batch_size"]
        checks[f"{p}: bs 1 vs bs {bs}"] = compare_ner(with_batch(ours[p], 1).ner(texts), our_results[(p, bs)])
    fp32 = our_results[("fp32", ner["fp32"]["best_batch_size"])]
    if "bf16" in precisions:
        checks["bf16 vs fp32"] = compare_ner(our_results[("bf16", ner["bf16"]["best_batch_size"])], fp32)
        checks["bf16 without batch invariance: bs 1 vs bs 128"] = compare_ner(
            with_batch(fast, 1).ner(texts), with_batch(fast, 128).ner(texts)
        )
    int8_t, int8_out = timed(with_batch(int8, 128).ner, texts)
    checks["int8 vs fp32"] = compare_ner(int8_out, fp32)
    checks["int8: bs 1 vs bs 128"] = compare_ner(with_batch(int8, 1).ner(texts), int8_out)
    peer_out = pipe(texts, batch_size=peer_bs)
    same = sum(
        [(e.type, e.start, e.end) for e in r.entities] == [(g["entity_group"], g["start"], g["end"]) for g in o]
        for r, o in zip(fp32, peer_out)
    )
    checks["peer vs fp32: texts with the same entities"] = (
        f"{same}/{len(texts)} (the pipeline tags every sub-token, mtl the first of each word)"
    )
    ner["checks"] = checks
    ner["int8"] = {"sentences_per_s": round(len(texts) / int8_t, 1), "batch_size": 128}
    ner["gold_entity_f1"] = {p: round(ner_f1(ours[p], sentences), 4) for p in precisions}
    ner["gold_entity_f1"]["int8"] = round(ner_f1(int8, sentences), 4)
    log(f"  checks: {json.dumps(checks)}")
    log(f"  int8: {ner['int8']['sentences_per_s']} sentences/s; gold entity F1 {ner['gold_entity_f1']}")
    report["ner"] = ner
    del pipe, peer

    # ---------------- QA
    examples = read_qa(args.squad).examples[: args.questions]
    questions, contexts = [ex.question for ex in examples], [ex.context for ex in examples]
    max_len, stride, max_answer = spec.qa_max_length, spec.doc_stride, spec.max_answer_length
    log(f"\nQA: {len(examples)} SQuAD v1.1 dev questions, windows of {max_len} tokens, stride {stride}")
    peer = peer_model(plain, "qa")
    run_qa_trainer(peer, tokenizer, questions[:8], contexts[:8], max_len, stride, max_answer, 8, False)  # warm-up
    for predictor in (*ours.values(), fast):
        with_batch(predictor, 16).qa(questions[:16], contexts[:16])
    peer_configs = (
        [(16, True), (1, False), (16, False)]
        if args.quick
        else [(16, True), (1, False), (8, False), (16, False), (32, False)]
    )
    peer_times, peer_answers = {}, {}
    for bs, padded in peer_configs:
        t, peer_answers[(bs, padded)] = timed(
            run_qa_trainer, peer, tokenizer, questions, contexts, max_len, stride, max_answer, bs, padded
        )
        peer_times[(bs, padded)] = [t]
        log(
            f"  Trainer.predict bs {bs:3d} {'pad to max_length' if padded else 'dynamic padding'}: "
            f"{len(examples) / t:6.1f} questions/s"
        )
    our_sizes = [16, 32] if args.quick else [16, 32, 64]
    our_times, our_results = {}, {}
    for p in precisions:
        for bs in our_sizes:
            t, our_results[(p, bs)] = timed(with_batch(ours[p], bs).qa, questions, contexts)
            our_times[(p, bs)] = [t]
            log(f"  mtl {p} bs {bs:3d}: {len(examples) / t:6.1f} questions/s")
    fast_t = timed(with_batch(fast, 32).qa, questions, contexts)[0]
    log(f"  mtl {precisions[-1]} without batch invariance, bs 32: {len(examples) / fast_t:6.1f} questions/s")
    peer_cfg = best_of(peer_times)[0]
    for _ in range(args.rounds):
        peer_times[peer_cfg].append(
            timed(run_qa_trainer, peer, tokenizer, questions, contexts, max_len, stride, max_answer, *peer_cfg)[0]
        )
        for p in precisions:
            bs = best_of({k: v for k, v in our_times.items() if k[0] == p})[0][1]
            our_times[(p, bs)].append(timed(with_batch(ours[p], bs).qa, questions, contexts)[0])
    peer_cfg, peer_t = best_of(peer_times)
    qa = {
        "inputs": len(examples),
        "max_length": max_len,
        "doc_stride": stride,
        "peer": {
            "name": "run_qa.py validation features + Trainer.predict + postprocess_qa_predictions",
            "questions_per_s": {
                f"bs {bs}, {'pad to max_length' if padded else 'dynamic padding'}": round(len(examples) / min(t), 1)
                for (bs, padded), t in peer_times.items()
            },
            "best": f"bs {peer_cfg[0]}, {'pad to max_length' if peer_cfg[1] else 'dynamic padding'}",
        },
        "bf16_without_batch_invariance_bs32_questions_per_s": round(len(examples) / fast_t, 1),
    }
    qa_feats = qa_features_of(ours["fp32"], questions, contexts)
    for p in precisions:
        (_, bs), t = best_of({k: v for k, v in our_times.items() if k[0] == p})
        batches = padded_batches(ours[p].model, qa_feats, bs, pad_id)
        raw_t = min(timed(raw_forward, plain, "qa", batches, autocasts[p])[0] for _ in range(args.rounds + 1))
        own_t = min(timed(raw_forward, ours[p].model, "qa", batches, autocasts[p])[0] for _ in range(args.rounds + 1))
        qa[p] = {
            "questions_per_s": {b: round(len(examples) / min(v), 1) for (q, b), v in our_times.items() if q == p},
            "best_batch_size": bs,
            "windows": len(qa_feats),
            "raw_forward_same_batches_questions_per_s": round(len(examples) / raw_t, 1),
            "mtl_forward_alone_same_batches_questions_per_s": round(len(examples) / own_t, 1),
            "ratio_vs_peer": round(peer_t / t, 2),
            "ratio_vs_raw_forward": round(raw_t / t, 2),
        }
        log(
            f"  mtl {p}: best bs {bs}: {len(examples) / t:.1f} questions/s = {peer_t / t:.2f}x Trainer.predict "
            f"({qa['peer']['best']}), {raw_t / t:.2f}x the raw forward on the same batches "
            f"({len(examples) / raw_t:.1f}/s; mtl's forward alone {len(examples) / own_t:.1f}/s)"
        )
    checks = {}
    for p in precisions:
        bs = qa[p]["best_batch_size"]
        checks[f"{p}: bs 1 vs bs {bs}"] = compare_qa(
            with_batch(ours[p], 1).qa(questions, contexts), our_results[(p, bs)]
        )
    fp32 = our_results[("fp32", qa["fp32"]["best_batch_size"])]
    if "bf16" in precisions:
        checks["bf16 vs fp32"] = compare_qa(our_results[("bf16", qa["bf16"]["best_batch_size"])], fp32)
        checks["bf16 without batch invariance: bs 1 vs bs 32"] = compare_qa(
            with_batch(fast, 1).qa(questions, contexts), with_batch(fast, 32).qa(questions, contexts)
        )
    int8_t, int8_out = timed(with_batch(int8, 32).qa, questions, contexts)
    checks["int8 vs fp32"] = compare_qa(int8_out, fp32)
    checks["int8: bs 1 vs bs 32"] = compare_qa(with_batch(int8, 1).qa(questions, contexts), int8_out)
    same = sum(a[0].text == b for a, b in zip(fp32, peer_answers[peer_cfg]))
    checks["peer vs fp32: same answer"] = f"{same}/{len(examples)}"
    qa["checks"] = checks
    qa["int8"] = {"questions_per_s": round(len(examples) / int8_t, 1), "batch_size": 32}
    qa["gold"] = {
        p: qa_scores(examples, [s[0].text for s in our_results[(p, qa[p]["best_batch_size"])]]) for p in precisions
    }
    qa["gold"]["int8"] = qa_scores(examples, [s[0].text for s in int8_out])
    qa["gold"]["peer"] = qa_scores(examples, peer_answers[peer_cfg])
    log(f"  checks: {json.dumps(checks)}")
    log(f"  int8: {qa['int8']['questions_per_s']} questions/s; gold EM/F1 {qa['gold']}")
    report["qa"] = qa

    # ---------------- summary
    d = default_precision
    summary = {
        "precision": d,
        "ner_vs_pipeline": ner[d]["ratio_vs_peer"],
        "ner_vs_raw_forward": ner[d]["ratio_vs_raw_forward"],
        "qa_vs_trainer": qa[d]["ratio_vs_peer"],
    }
    summary |= {
        p: {
            "ner_vs_pipeline": ner[p]["ratio_vs_peer"],
            "ner_vs_raw_forward": ner[p]["ratio_vs_raw_forward"],
            "qa_vs_trainer": qa[p]["ratio_vs_peer"],
        }
        for p in precisions
    }
    report["summary"] = summary
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, transformers {info['transformers']}")
    for p in precisions:
        tag = f"mtl {p}{' (default)' if p == d else ''}"
        print(
            f"{tag:<20} NER / pipeline: {ner[p]['ratio_vs_peer']:5.2f}x (>= 2)   NER / raw forward, same batches: "
            f"{ner[p]['ratio_vs_raw_forward']:4.2f}x (>= 0.8)   QA / run_qa + Trainer.predict: "
            f"{qa[p]['ratio_vs_peer']:4.2f}x (>= 1.5)"
        )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    Path(args.output).with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    log(f"written: {args.output} and {Path(args.output).with_suffix('.md')}")


if __name__ == "__main__":
    main()
