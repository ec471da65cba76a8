"""`mtl prepare`: validate every data file, tokenize with the backbone's tokenizer, cache the features,
and summarise what a training run would see."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .backbones import load_tokenizer
from .config import TrainConfig
from .task_data import featurize, read_task_data


def prepare(config: TrainConfig) -> list[dict]:
    """One summary row per task and split."""
    data = read_task_data(config)
    tokenizer = load_tokenizer(config.backbone)
    featurize(data, tokenizer, config)
    rows = []
    for task, td in data.items():
        for split, examples, features in (("train", td.train, td.train_features), ("valid", td.valid, td.valid_features)):
            if not examples:
                continue
            lengths = np.array(features.lengths())
            row = {
                "task": task, "split": split, "examples": len(examples), "features": len(features),
                "length_p50": int(np.percentile(lengths, 50)), "length_p95": int(np.percentile(lengths, 95)),
                "length_max": int(lengths.max()), "skipped": len(td.skipped) if split == "train" else 0,
            }
            if task == "ner":
                row["entities"] = dict(sorted(Counter(tag[2:] for ex in examples for tag in ex.tags if tag.startswith("B-")).items()))
                row["split_sentences"] = len(features) - len(examples)
            if task == "qa":
                row["windows_per_example"] = round(len(features) / len(examples), 3)
                if split == "train":
                    found = {features.example[i] for i, start in enumerate(features.start_positions) if start > 0}
                    row["answers_lost_to_truncation"] = sum(1 for i, ex in enumerate(examples) if ex.answers and i not in found)
            if task == "cls":
                row["labels"] = len({ex.label for ex in examples})
            rows.append(row)
    return rows
