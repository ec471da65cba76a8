"""Text classification: one label per text, from the first token's representation."""

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
        return text_features(examples, tokenizer, {label: i for i, label in enumerate(labels)}, settings.max_length)

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
        writer.writerow(["id", "text", "gold", "pred", "probability"])
        for ex, pred, row in zip(examples, evaluation.predictions, evaluation.detail):
            writer.writerow([ex.id, ex.text, ex.label, pred, f"{max(row):.6f}"])
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
                        {"id": ex.id, "text": ex.text, "gold": ex.label, "pred": pred, "probability": confidence},
                    )
                )
        return [row for _, row in sorted(rows, key=lambda row: row[0])[:limit]]

    def predict(self, model, tokenizer, inputs, batch_size, device, autocast):
        """Probability of every label per TextItem, most likely first."""
        from ..data.examples import ClsExample

        examples = [ClsExample(str(i), item.text, "") for i, item in enumerate(inputs)]
        probabilities = decode(
            model, text_features(examples, tokenizer, {}, model.spec.max_length), batch_size, device, autocast
        )
        names = model.spec.labels_of(self.name)
        return [dict(sorted(zip(names, map(float, row)), key=lambda kv: -kv[1])) for row in probabilities]

    def record(self, item, result, top_k=0, **options):
        label, score = next(iter(result.items()))
        kept = list(result.items())[: top_k or None]
        return {"text": item.text, "label": label, "score": r4(score), "probabilities": {k: r4(v) for k, v in kept}}


def text_features(examples: list, tokenizer, label_ids: dict[str, int], max_length: int) -> Features:
    if not examples:
        return Features()
    encoded = tokenizer([ex.text for ex in examples], truncation=True, max_length=max_length)
    return Features(
        input_ids=encoded["input_ids"],
        example=list(range(len(examples))),
        label=[label_ids.get(ex.label, IGNORE) for ex in examples],
    )


def decode(model, features: Features, batch_size: int, device, autocast):
    """Class probabilities, one row per example."""
    import numpy as np

    from ..inference.forward import forward_batches, softmax

    probs = [None] * len(features)
    for rows, out, _ in forward_batches(model, "cls", features, batch_size, device, autocast):
        for row, p in zip(rows, softmax(out["logits"])):
            probs[row] = p
    return np.stack(probs) if probs else np.zeros((0, 0))
