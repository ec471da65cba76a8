"""From a config to each task's examples, label list and (cached) features."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import TrainConfig, parse_slice
from .data.examples import QaExample
from .data.readers import read_cls, read_ner, read_qa
from .errors import Problem
from .features import Features, cached, cls_features, ner_features, qa_features, tokenizer_fingerprint

READERS = {"ner": read_ner, "qa": read_qa, "cls": read_cls}
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
    skipped: list[Problem] = field(default_factory=list)
    train_features: Features | None = None
    valid_features: Features | None = None


def read_task_data(config: TrainConfig) -> dict[str, TaskData]:
    """Read and validate every file up front, so bad data never crashes a run late."""
    data = {}
    for task in config.tasks():
        read = READERS[task]
        train = read(data_path(getattr(config, f"{task}_train")), skip_bad=config.skip_bad)
        valid_path = data_path(getattr(config, f"{task}_valid"))
        valid = read(valid_path, skip_bad=config.skip_bad) if valid_path else None
        train_examples, valid_examples = train.examples, valid.examples if valid else []
        if task == "qa":
            train_examples = select_articles(train_examples, config.qa_train_articles)
            valid_examples = select_articles(valid_examples, config.qa_valid_articles)
        size = getattr(config, f"{task}_train_size")
        if size:
            train_examples = train_examples[:size]
        train_examples = train_examples + augmented(task, train_examples, config)
        data[task] = TaskData(task, train_examples, valid_examples, train.skipped + (valid.skipped if valid else []))
    return data


def augmented(task: str, examples: list, config: TrainConfig) -> list:
    """New training examples from --augment (NER label-safe, classification EDA) and back-translation."""
    from . import augment

    extra = []
    if config.augment and task in ("ner", "cls"):
        settings = augment.AugmentSettings(augment.parse_operations(config.augment), config.augment_prob,
                                           config.augment_copies, config.seed)
        needs_synonyms = {"synonym", "insert"} & set(settings.operations)
        synonyms = augment.Synonyms() if needs_synonyms else None
        extra += (augment.augment_ner if task == "ner" else augment.augment_cls)(examples, settings, synonyms)
    if config.backtranslate_models and task == "cls":
        extra += augment.backtranslate(examples, tuple(config.backtranslate_models.split(",")))
    return extra


def select_articles(examples: list[QaExample], articles: str) -> list[QaExample]:
    """Keep the SQuAD articles in a slice of the file's article order (titles in order of appearance)."""
    if not articles:
        return examples
    titles = list(dict.fromkeys(ex.title for ex in examples))
    keep = set(titles[parse_slice(articles)])
    return [ex for ex in examples if ex.title in keep]


def ner_label_list(*example_lists) -> list[str]:
    """O first, then B-/I- of every entity type, types sorted."""
    types = sorted({tag[2:] for examples in example_lists for ex in examples for tag in ex.tags if tag != "O"})
    return ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]


def cls_label_list(*example_lists) -> list[str]:
    return sorted({ex.label for examples in example_lists for ex in examples})


def build_features(task: str, examples: list, tokenizer, config: TrainConfig, labels: list[str], training: bool) -> Features:
    key = (task, training, tokenizer_fingerprint(tokenizer), config.max_length, config.qa_max_length,
           config.doc_stride, tuple(labels), repr(examples))

    def build() -> Features:
        label_ids = {label: i for i, label in enumerate(labels)}
        if task == "ner":
            return ner_features(examples, tokenizer, label_ids, config.max_length)
        if task == "qa":
            return qa_features(examples, tokenizer, config.qa_max_length, config.doc_stride, training)
        return cls_features(examples, tokenizer, label_ids, config.max_length)

    return cached(config.cache_dir, key, build)


def featurize(data: dict[str, TaskData], tokenizer, config: TrainConfig) -> dict[str, list[str]]:
    """Label lists (from train and valid data) and the features of every split; returns the labels."""
    labels = {
        "ner": ner_label_list(data["ner"].train, data["ner"].valid) if "ner" in data else [],
        "qa": [],
        "cls": cls_label_list(data["cls"].train, data["cls"].valid) if "cls" in data else [],
    }
    for task, td in data.items():
        td.train_features = build_features(task, td.train, tokenizer, config, labels[task], training=True)
        td.valid_features = build_features(task, td.valid, tokenizer, config, labels[task], training=False)
    return labels
