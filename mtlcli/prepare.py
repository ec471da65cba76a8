"""`mtl prepare`: validate every data file, tokenize with the backbone's tokenizer, cache the features,
and summarise what a training run would see."""

from __future__ import annotations

import numpy as np

from . import tasks
from .backbones import load_backbone_config, load_tokenizer
from .config import TrainConfig
from .spec import uses_segments
from .task_data import featurize, read_task_data


def prepare(config: TrainConfig) -> list[dict]:
    """One summary row per task and split."""
    data = read_task_data(config)
    tokenizer = load_tokenizer(config.backbone)
    featurize(data, tokenizer, config, uses_segments(config, load_backbone_config(config.backbone).to_dict()))
    rows = []
    for task, td in data.items():
        for split, examples, features in (
            ("train", td.train, td.train_features),
            ("valid", td.valid, td.valid_features),
        ):
            if not examples:
                continue
            lengths = np.array(features.lengths())
            row = {
                "task": task,
                "split": split,
                "examples": len(examples),
                "features": len(features),
                "length_p50": int(np.percentile(lengths, 50)),
                "length_p95": int(np.percentile(lengths, 95)),
                "length_max": int(lengths.max()),
                "skipped": len(td.skipped.get(split, [])),
            }
            row |= tasks.get(task).describe(examples, features, split)
            rows.append(row)
    return rows
