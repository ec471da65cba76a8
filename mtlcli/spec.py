"""A model directory's own config.json, readable without torch (fast errors, `mtl evaluate` checks)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, Problem

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ModelSpec:
    """mtl's own config.json: everything needed to rebuild the model without the original backbone."""

    backbone: str
    backbone_config: dict
    tasks: list[str]
    labels: dict[str, list[str]] = field(default_factory=dict)  # per task with a label list (NER tags, classes)
    max_length: int = 128
    qa_max_length: int = 384
    doc_stride: int = 128
    max_answer_length: int = 30
    # QA trained with unanswerable questions (SQuAD 2.0): the empty answer is a candidate (tasks/qa_spans.py)
    qa_unanswerable: bool = False
    head_dropout: float = 0.1
    ner_decoding: str = "argmax"  # argmax per word, or bio: the best sequence of legal BIO tags (tasks/ner.py)
    ner_context: int = 0  # NER windows hold this many sub-tokens of the neighbouring sentences on each side
    # text pairs carry the tokenizer's segment ids (token_type_ids); False: segment 0 everywhere
    segment_ids: bool = False
    heads: dict[str, dict] = field(default_factory=dict)  # per task: how its head is built (tasks' head_settings)
    adapters: dict = field(default_factory=dict)  # task-private LoRA adapters (mtlcli.adapters); {}: none
    versions: dict = field(default_factory=dict)

    def labels_of(self, task: str) -> list[str]:
        return self.labels.get(task, [])


def uses_segments(config, backbone_config: dict) -> bool:
    """Whether text pairs get the tokenizer's segment ids: when the config asks (segment_ids) and the backbone has
    segment embeddings to tell the parts apart (BERT: yes; RoBERTa has one type only, DistilBERT none)."""
    return config.segment_ids and backbone_config.get("type_vocab_size", 0) > 1


def new_spec(
    config, backbone_config: dict, labels: dict[str, list[str]], train: dict[str, list] | None = None
) -> ModelSpec:
    """The spec of a model about to be trained from a TrainConfig on the tasks in `labels` (`train`: the training
    examples per task, for what a task's decoding learns from them)."""
    from . import tasks
    from .adapters import resolve_adapters

    learnt = {
        key: value
        for task, examples in (train or {}).items()
        for key, value in tasks.get(task).trained_settings(examples).items()
    }
    return ModelSpec(
        backbone=config.backbone,
        backbone_config=backbone_config,
        tasks=list(labels),
        labels={task: names for task, names in labels.items() if names},
        max_length=config.max_length,
        qa_max_length=config.qa_max_length,
        doc_stride=config.doc_stride,
        max_answer_length=config.max_answer_length,
        head_dropout=config.head_dropout,
        ner_decoding=config.ner_decoding,
        ner_context=config.ner_context,
        segment_ids=uses_segments(config, backbone_config),
        heads={task: settings for task in labels if (settings := tasks.get(task).head_settings(backbone_config))},
        **learnt,
        adapters=resolve_adapters(config.task_adapters, backbone_config),
    )


def read_spec(directory: str | Path) -> ModelSpec:
    path = Path(directory) / CONFIG_FILE
    if not Path(directory).is_dir():
        raise InputError(Problem(str(directory), "", "model directory not found"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        labels = data.setdefault("labels", {})
        for task in ("ner", "cls"):  # models saved before the task registry kept {task}_labels
            if f"{task}_labels" in data and task in data.get("tasks", ()):
                labels.setdefault(task, data[f"{task}_labels"])
        return ModelSpec(**{k: v for k, v in data.items() if k in ModelSpec.__dataclass_fields__})
    except FileNotFoundError:
        raise InputError(Problem(str(path), "", "not an mtl model directory (config.json missing)")) from None
    except (ValueError, TypeError, AttributeError) as err:
        raise InputError(Problem(str(path), "", f"not a valid mtl config: {err}")) from None
