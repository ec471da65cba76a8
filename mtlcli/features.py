"""Model features (token ids plus each task's per-row targets and offsets), and the feature cache.

Each task's featurizer lives with its task (mtlcli.tasks): NER word windows, QA context windows with
offsets, classification texts, as Hugging Face's run_ner.py / run_qa.py build them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

IGNORE = -100
SOFT_TARGETS = "soft_targets"  # the Features.extra column of a teacher's distributions, one per training row
FEATURES_VERSION = "2"


@dataclass
class Features:
    """One row per model input. `example` maps a row back to its example (several rows for windows)."""

    input_ids: list[list[int]] = field(default_factory=list)
    example: list[int] = field(default_factory=list)
    # segment id per token (text pairs, on backbones with segment embeddings); empty: segment 0 everywhere
    token_type_ids: list[list[int]] = field(default_factory=list)
    # NER: label id per token, and the index of the word whose prediction this token gives (-1: none)
    labels: list[list[int]] = field(default_factory=list)
    word_index: list[list[int]] = field(default_factory=list)
    # QA: gold start/end token (0 = [CLS] when the answer is not in this window), context char offsets
    start_positions: list[int] = field(default_factory=list)
    end_positions: list[int] = field(default_factory=list)
    offsets: list[list[tuple[int, int] | None]] = field(default_factory=list)
    # classification: label id per row
    label: list[int] = field(default_factory=list)
    # per-row columns of any other task, by name
    extra: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]

    @cached_property
    def labelled_tokens_per_row(self) -> float:
        """NER: the mean number of labelled tokens in a row (each word's first sub-token)."""
        labelled = sum(len(row) - row.count(IGNORE) for row in self.labels)
        return labelled / max(1, len(self.labels))

    def first(self, n: int) -> Features:
        """The first n rows (every per-row column cut alike; a task's empty columns stay empty)."""
        values = {name: column[:n] for name, column in vars(self).items() if name != "extra"}
        return Features(**values, extra={name: column[:n] for name, column in self.extra.items()})


def build_features(
    task: str,
    examples: list,
    tokenizer,
    settings,
    labels: list[str],
    training: bool,
    cache_dir: str | Path | None = None,
) -> Features:
    """The task's featurizer (mtlcli.tasks) on `examples`, through the cache when `cache_dir` is given."""
    from . import tasks

    key = feature_key(task, examples, tokenizer, settings, labels, training)
    return cached(cache_dir, key, lambda: tasks.get(task).featurize(examples, tokenizer, settings, labels, training))


def feature_key(task: str, examples: list, tokenizer, settings, labels: list[str], training: bool) -> tuple:
    """Everything a task's features depend on: what the cache is keyed by."""
    return (task, training, tokenizer_fingerprint(tokenizer), settings, tuple(labels), repr(examples))


def tokenizer_fingerprint(tokenizer) -> str:
    """The tokenizer's vocabulary and pipeline; not its truncation and padding, which are whatever its last call
    set (a QA featurization truncates), so the same tokenizer keeps one fingerprint."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def cached(cache_dir: str | Path | None, key_parts: tuple, build, kind: str = "features"):
    """What `build` returns, keyed by a hash of everything it depends on (for features: the examples, tokenizer,
    lengths, labels). Features are stored as their columns; other kinds as they are (tensors, lists, dicts)."""
    import torch

    if not cache_dir:
        return build()
    key = hashlib.sha256(repr((FEATURES_VERSION,) + key_parts).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"{kind}-{key}.pt"
    if path.is_file():
        try:
            state = torch.load(path, weights_only=True)
            return Features(**state) if kind == "features" else state
        except Exception:  # a torn or stale cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    torch.save(vars(value) if kind == "features" else value, tmp)
    os.replace(tmp, path)
    return value
