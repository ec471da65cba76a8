"""From a config to each task's examples, label list and (cached) features."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import tasks
from .config import TrainConfig, task_key
from .data.hf_data import DatasetOptions
from .errors import Problem
from .features import Features, build_features
from .tasks import FeatureSettings

BUNDLED_PREFIX = "@demo/"  # data shipped inside the package (see mtlcli/demo_data/NOTICE.md)


def data_path(value: str) -> str:
    if value.startswith(BUNDLED_PREFIX):
        from importlib import resources

        return str(resources.files("mtlcli.demo_data") / value.removeprefix(BUNDLED_PREFIX))
    return value


@dataclass
class TaskData:
    task: str
    train: list
    valid: list
    skipped: dict[str, list[Problem]] = field(default_factory=dict)  # per split: the records --skip-bad dropped
    train_features: Features | None = None
    valid_features: Features | None = None


def read_task_data(config: TrainConfig) -> dict[str, TaskData]:
    """Read and validate every file up front, so bad data never crashes a run late."""
    data = {}
    for name in config.tasks():
        task = tasks.get(name)
        train = task.read(
            data_path(config.setting(name, "train")), config.skip_bad, dataset_options(config, name, "train")
        )
        valid_path = data_path(config.setting(name, "valid"))
        valid = task.read(valid_path, config.skip_bad, dataset_options(config, name, "valid")) if valid_path else None
        train_examples = task.select(train.examples, config, "train")
        valid_examples = task.select(valid.examples, config, "valid") if valid else []
        size = config.setting(name, "train_size")
        if size:
            train_examples = train_examples[:size]
        train_examples = train_examples + augmented(task, train_examples, config)
        skipped = {"train": train.skipped, "valid": valid.skipped if valid else []}
        data[name] = TaskData(name, train_examples, valid_examples, skipped)
    return data


def dataset_options(config: TrainConfig, task: str, role: str) -> DatasetOptions:
    """The split and columns of a Hugging Face datasets input (train or valid), from the config keys."""
    split_key, columns_key = task_key(task, f"{role}_split"), task_key(task, "columns")
    return DatasetOptions(
        role,
        config.setting(task, f"{role}_split"),
        config.setting(task, "columns"),
        split_option=f"--set {split_key}=NAME",
        columns_option=f"--set {columns_key}=...",
    )


def augmented(task, examples: list, config: TrainConfig) -> list:
    """New training examples from --augment (NER label-safe, classification EDA) and back-translation."""
    from . import augment

    extra = []
    if config.augment and task.augmentable:
        settings = augment.AugmentSettings(
            augment.parse_operations(config.augment), config.augment_prob, config.augment_copies, config.seed
        )
        needs_synonyms = {"synonym", "insert"} & set(settings.operations)
        extra += task.augment(examples, settings, augment.Synonyms() if needs_synonyms else None)
    if config.backtranslate_models and task.name == "cls":  # config validation allows it for cls only
        extra += augment.backtranslate(examples, tuple(config.backtranslate_models.split(",")))
    return extra


def featurize(data: dict[str, TaskData], tokenizer, config: TrainConfig, segment_ids: bool) -> dict[str, list[str]]:
    """Label lists (from train and valid data) and the features of every split; returns the labels.
    `segment_ids`: whether text pairs carry the tokenizer's segment ids (spec.uses_segments)."""
    settings = feature_settings(config, segment_ids)
    labels = {name: tasks.get(name).label_list(td.train, td.valid) for name, td in data.items()}
    for name, td in data.items():
        td.train_features = build_features(name, td.train, tokenizer, settings, labels[name], True, config.cache_dir)
        td.valid_features = build_features(name, td.valid, tokenizer, settings, labels[name], False, config.cache_dir)
    return labels


def feature_settings(config: TrainConfig, segment_ids: bool) -> FeatureSettings:
    return FeatureSettings(config.max_length, config.qa_max_length, config.doc_stride, segment_ids, config.ner_context)
