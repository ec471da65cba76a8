"""What a task is: every task-specific fact in one object, so that adding a task is one new module.

A `Task` says how its files are read, how examples become model features, what its head computes and its
loss, how head outputs decode into predictions, how those are scored and shown, and what one prediction
record looks like. Everything else (config keys, the training loop, validation, `mtl evaluate`, the
predictor, the benchmark, the tables) asks the registry (mtlcli.tasks) instead of naming tasks.

Only the standard library is imported at module level: the CLI reads titles and metric names from here
before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str  # in the task's metrics dict
    label: str  # how tables name it
    fraction: bool = True  # a value in [0, 1] shown as a percentage (SQuAD EM/F1 already are percentages)

    def percent(self, value: float) -> float:
        return value * 100 if self.fraction else value


@dataclass(frozen=True)
class FeatureSettings:
    """What feature building depends on besides the examples and the tokenizer: taken from a TrainConfig when
    training, from the model's own config.json when evaluating or predicting."""

    max_length: int = 128  # NER and classification
    qa_max_length: int = 384
    doc_stride: int = 128
    segment_ids: bool = False  # text pairs carry the tokenizer's token_type_ids
    ner_context: int = 0  # NER: sub-tokens of the neighbouring sentences of the document on each side

    @classmethod
    def of(cls, spec) -> FeatureSettings:
        """A saved model's settings (its config.json)."""
        return cls(spec.max_length, spec.qa_max_length, spec.doc_stride, spec.segment_ids, spec.ner_context)


@dataclass
class TaskEvaluation:
    task: str
    metrics: dict
    predictions: list  # NER: tag list per sentence; QA: best Span per question; cls: label per text
    detail: list | None = None  # NER: word tag probabilities; QA: n-best Spans per question; cls: probability rows


class Task:
    """The hooks every task fills in: a subclass sets the facts below and overrides the methods."""

    name: str  # config keys ({name}_train, lambda_{name}), the --{name} flag of evaluate, the model's head name
    title: str  # in sentences and tables: "NER", "QA", "classification"
    short_title: str  # in narrow table headings
    metrics: tuple[Metric, ...]  # what tables show, in order
    primary_metric: str  # picks the best checkpoint and drives early stopping (higher is better)
    headline_metrics: tuple[str, ...]  # the few metrics of compact tables and learning curves
    prediction_file: str  # what `mtl evaluate --out` writes the predictions to
    output_names: tuple[str, ...] = ("logits",)  # the head outputs the batched forward pass returns
    per_label: tuple[str, str] | None = None  # (metrics key, what a row is) of a per-label scores table
    confusion_of = "labels"  # what the rows and columns of the metrics' "confusion" matrix are
    augmentable = False  # whether `augment` makes new training examples (--augment)
    per_token = False  # one output per token: its training batches can be packed (mtlcli.training.packing)
    distillable = False  # whether a teacher's soft targets can train it (--teacher; soft_targets, soft_loss)

    reader = ""  # the function of mtlcli.data.readers that reads the task's files

    def read(self, path, skip_bad: bool = False, options=None):
        """A labelled file or datasets input -> data.readers.ReadResult (examples, and the problems of skipped
        records); `options`: the split and columns of a datasets input (data.hf_data.DatasetOptions)."""
        from ..data import readers

        return getattr(readers, self.reader)(path, skip_bad=skip_bad, options=options or readers.PLAIN)

    def metric(self, key: str) -> Metric:
        return next(m for m in self.metrics if m.key == key)

    # ----------------------------------------------------------------------------------------- data
    def label_list(self, *example_lists) -> list[str]:
        """The model's labels, from every split's examples (stable order)."""
        return []

    def select(self, examples: list, config, split: str) -> list:
        """The examples of a split a config keeps (QA: an article slice)."""
        return examples

    def augment(self, examples: list, settings, synonyms) -> list:
        """New training examples from --augment; tasks without augmentation add none."""
        return []

    def featurize(self, examples: list, tokenizer, settings: FeatureSettings, labels: list[str], training: bool):
        raise NotImplementedError

    def check_scorable(self, path: str, examples: list) -> None:
        """Raise InputError when a labelled file cannot be scored as a whole (QA: a question without answers)."""

    def describe(self, examples: list, features, split: str) -> dict:
        """What `mtl prepare` shows of a split besides counts and lengths."""
        return {}

    def evaluation_features(self, examples: list, tokenizer, spec, notes: list[str]):
        """Features of labelled examples for scoring a saved model; notes what the model cannot label."""
        return self.featurize(examples, tokenizer, FeatureSettings.of(spec), spec.labels_of(self.name), False)

    # ----------------------------------------------------------------------------------------- model
    def head_settings(self, backbone_config: dict) -> dict:
        """How a new model's head is built for this backbone (kept in config.json: spec.heads[task])."""
        return {}

    def trained_settings(self, examples: list) -> dict:
        """ModelSpec fields a model takes from its training examples (QA: whether it learnt unanswerable questions)."""
        return {}

    def build_head(self, hidden_size: int, labels: list[str], settings: dict):
        """The head module; `settings` from head_settings (empty for models saved without them)."""
        raise NotImplementedError

    def initialize(self, head, encoder) -> None:
        """After the heads' random initialization: take what the pretrained encoder offers (BERT's pooler)."""

    def head_forward(self, head, hidden, attention_mask, dropout, targets: dict) -> dict:
        """Head outputs (float32) and, when `targets` holds them, the loss."""
        raise NotImplementedError

    def targets(self, features, rows: list[int], width: int) -> dict:
        """Training targets of a batch of feature rows, as tensors (padded to `width` where per token)."""
        raise NotImplementedError

    def soft_targets(self, outputs: dict, lengths) -> list:
        """A teacher's head outputs of one batch (float32 numpy arrays, padded) → per row, the distribution the student
        learns from: a (tokens, k) array for per-token outputs (zero-padded to a batch), a (k,) one per row."""
        raise NotImplementedError

    def soft_loss(self, out: dict, soft, targets: dict):
        """Cross-entropy of the student's head outputs against a batch of soft targets, averaged as the gold loss is."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------- results
    def evaluate(
        self, model, examples: list, features, batch_size: int, device, autocast, options: dict
    ) -> TaskEvaluation:
        """Predict every example and score it with the standard metrics."""
        raise NotImplementedError

    def settings_record(self, options: dict, spec) -> dict:
        """The evaluation settings that change this task's scores, recorded beside them in metrics.json."""
        return {}

    def prediction_text(self, examples: list, evaluation: TaskEvaluation) -> str:
        """The content of `prediction_file`, in the form the task's official scorer reads."""
        raise NotImplementedError

    def worst(self, examples: list, evaluation: TaskEvaluation, limit: int) -> list[dict]:
        """The `limit` examples with the most errors, worst first."""
        return []

    def predict(self, model, tokenizer, inputs: list, batch_size: int, device, autocast, **options) -> list:
        """Predictions for raw inputs (what `Predictor.predict` returns)."""
        raise NotImplementedError

    def record(self, item, result, **options) -> dict:
        """One prediction as the JSON object of one `predict-* --format jsonl` line (and of the server)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------- serving
    def request_model(self):
        """The pydantic model of this task's POST body on `mtl serve`: texts, unless the task says otherwise."""
        from ..serve.schemas import TextsRequest

        return TextsRequest

    def request_inputs(self, body) -> tuple[list, dict, dict]:
        """(input items, predict options, record options) of a validated request body."""
        from ..inputs import TextItem

        return [TextItem(text) for text in body.texts], {}, {}


def r4(x: float) -> float:
    return round(float(x), 4)
