"""Text classification: one label per text or text pair (NLI, paraphrase), from the first token's representation."""

from __future__ import annotations

from ..features import IGNORE, Features
from .base import FeatureSettings, Metric, Task, TaskEvaluation, r4


class ClsTask(Task):
    name, title, short_title = "cls", "classification", "cls"
    metrics = (
        Metric("accuracy", "accuracy"),
        Metric("macro_precision", "macro precision"),
        Metric("macro_recall", "macro recall"),
        Metric("macro_f1", "macro F1"),
    )
    primary_metric = "accuracy"
    headline_metrics = ("accuracy",)
    per_label = ("per_class", "class")
    augmentable = True
    distillable = True
    reader = "read_cls"
    prediction_file = "cls_predictions.csv"

    def label_list(self, *example_lists):
        return sorted({ex.label for examples in example_lists for ex in examples})

    def augment(self, examples, settings, synonyms):
        from ..augment import augment_cls

        return augment_cls(examples, settings, synonyms)

    def featurize(self, examples, tokenizer, settings: FeatureSettings, labels, training):
        label_ids = {label: i for i, label in enumerate(labels)}
        return text_features(examples, tokenizer, label_ids, settings.max_length, settings.segment_ids)

    def describe(self, examples, features, split):
        return {"labels": len({ex.label for ex in examples})}

    def evaluation_features(self, examples, tokenizer, spec, notes):
        labels = spec.labels_of(self.name)
        unknown = sorted({ex.label for ex in examples} - set(labels))
        if unknown:
            notes.append(
                f"classification: gold label(s) the model has no class for: {', '.join(unknown[:10])}"
                + (f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else "")
            )
        return super().evaluation_features(examples, tokenizer, spec, notes)

    def head_settings(self, backbone_config):
        from .cls_heads import shape_for

        return {"shape": shape_for(backbone_config.get("model_type", ""))}

    def build_head(self, hidden_size, labels, settings):
        from .cls_heads import HEADS

        return HEADS[settings.get("shape", "linear")](hidden_size, len(labels))

    def initialize(self, head, encoder):
        from .cls_heads import copy_pretrained_pooler

        copy_pretrained_pooler(head, encoder)

    def head_forward(self, head, hidden, attention_mask, dropout, targets):
        from torch.nn import functional as F

        from .cls_heads import classify

        logits = classify(head, hidden, dropout).float()
        out = {"logits": logits}
        if "labels" in targets:
            out["loss"] = F.cross_entropy(logits, targets["labels"], ignore_index=IGNORE)
        return out

    def soft_targets(self, outputs, lengths):
        from ..inference.forward import softmax

        return list(softmax(outputs["logits"]))

    def soft_loss(self, out, soft, targets):
        from torch.nn import functional as F

        return -(soft * F.log_softmax(out["logits"], -1)).sum(-1).mean()

    def targets(self, features, rows, width):
        import torch

        return {"labels": torch.tensor([features.label[r] for r in rows])}

    # ----------------------------------------------------------------------------------------- results
    def evaluate(self, model, examples, features, batch_size, device, autocast, options):
        from ..metrics import cls_metrics

        probabilities = decode(model, features, batch_size, device, autocast)
        names = model.spec.labels_of(self.name)
        predicted = [names[i] for i in probabilities.argmax(-1)] if len(examples) else []
        scores = cls_metrics([ex.label for ex in examples], predicted)
        return TaskEvaluation(self.name, scores, predicted, [row.tolist() for row in probabilities])

    def prediction_text(self, examples, evaluation):
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        pairs = any(ex.text_pair is not None for ex in examples)
        writer.writerow(["id", "text", *(["text_pair"] if pairs else []), "gold", "pred", "probability"])
        for ex, pred, row in zip(examples, evaluation.predictions, evaluation.detail):
            texts = [ex.text, ex.text_pair or ""] if pairs else [ex.text]
            writer.writerow([ex.id, *texts, ex.label, pred, f"{max(row):.6f}"])
        return buffer.getvalue()

    def worst(self, examples, evaluation, limit):
        """Wrong labels, the most confident first."""
        rows = []
        for i, (ex, pred) in enumerate(zip(examples, evaluation.predictions)):
            if pred != ex.label:
                confidence = max(evaluation.detail[i])
                rows.append(
                    (
                        (-confidence, i),
                        {"id": ex.id} | texts_of(ex) | {"gold": ex.label, "pred": pred, "probability": confidence},
                    )
                )
        return [row for _, row in sorted(rows, key=lambda row: row[0])[:limit]]

    def predict(self, model, tokenizer, inputs, batch_size, device, autocast):
        """Probability of every label per TextItem (a text, or a pair with its text_pair), most likely first."""
        from ..data.examples import ClsExample

        examples = [ClsExample(str(i), item.text, "", item.text_pair) for i, item in enumerate(inputs)]
        features = text_features(examples, tokenizer, {}, model.spec.max_length, model.spec.segment_ids)
        probabilities = decode(model, features, batch_size, device, autocast)
        names = model.spec.labels_of(self.name)
        return [dict(sorted(zip(names, map(float, row)), key=lambda kv: -kv[1])) for row in probabilities]

    def record(self, item, result, top_k=0, **options):
        label, score = next(iter(result.items()))
        kept = list(result.items())[: top_k or None]
        return texts_of(item) | {"label": label, "score": r4(score), "probabilities": {k: r4(v) for k, v in kept}}

    def request_model(self):
        from ..serve.schemas import TextsOrPairsRequest

        return TextsOrPairsRequest

    def request_inputs(self, body):
        from ..inference.predictor import text_items

        return text_items(body.texts, body.text_pairs), {}, {}


def texts_of(item) -> dict[str, str]:
    """{"text"} of an example or input item, with "text_pair" for a pair."""
    return {"text": item.text} | ({"text_pair": item.text_pair} if item.text_pair is not None else {})


def text_features(
    examples: list, tokenizer, label_ids: dict[str, int], max_length: int, segment_ids: bool = False
) -> Features:
    """Token ids of each text, or of each pair as the tokenizer encodes one ([CLS] text [SEP] pair [SEP], the
    longer text truncated first, as run_glue.py); with `segment_ids`, pairs keep the tokenizer's token_type_ids."""
    features = Features(example=list(range(len(examples))), label=[label_ids.get(ex.label, IGNORE) for ex in examples])
    features.input_ids = [[] for _ in examples]
    segments = [[] for _ in examples]
    singles = [i for i, ex in enumerate(examples) if ex.text_pair is None]
    pairs = [i for i, ex in enumerate(examples) if ex.text_pair is not None]
    for rows, texts in (
        (singles, ([examples[i].text for i in singles],)),
        (pairs, ([examples[i].text for i in pairs], [examples[i].text_pair for i in pairs])),
    ):
        if not rows:
            continue
        encoded = tokenizer(*texts, truncation=True, max_length=max_length)
        for k, row in enumerate(rows):
            features.input_ids[row] = ids = encoded["input_ids"][k]
            segments[row] = encoded["token_type_ids"][k] if "token_type_ids" in encoded else [0] * len(ids)
    if segment_ids and pairs:
        features.token_type_ids = segments
    return features


def decode(model, features: Features, batch_size: int, device, autocast):
    """Class probabilities, one row per example."""
    import numpy as np

    from ..inference.forward import forward_batches, softmax

    probs = [None] * len(features)
    for rows, out, _ in forward_batches(model, "cls", features, batch_size, device, autocast):
        for row, p in zip(rows, softmax(out["logits"])):
            probs[row] = p
    return np.stack(probs) if probs else np.zeros((0, 0))
