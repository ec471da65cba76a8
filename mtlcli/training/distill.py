"""Born-again multi-task distillation with teacher annealing (Clark et al. 2019, "BAM! Born-Again Multi-Task
Networks for Natural Language Understanding").

A task given a teacher (`{task}_teacher`: an mtl model with that task's head, usually trained on that task alone)
learns from its gold targets and from the teacher's distributions (temperature 1):

    loss = (1 − w)·CE(gold) + w·CE(teacher's distribution),   w = 1 − step / total steps

so the student starts by imitating its teachers and ends on the gold labels alone. Cross-entropy is linear in its
target, so this is BAM's cross-entropy against the mixed target λ·y + (1 − λ)·p_teacher with λ = 1 − w.

The teachers' distributions are computed once per training feature, before the loop, and cached beside the features
(keyed like them, plus the teacher's weights and the precision): the loop runs no teacher. w depends only on the step
counter, which checkpoints keep, so a resumed run mixes exactly as an uninterrupted one does.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from .. import tasks
from ..errors import InputError, Problem
from ..features import SOFT_TARGETS, cached, feature_key
from ..spec import CONFIG_FILE, WEIGHTS_FILE, read_spec


def teacher_weight(step: int, total_steps: int) -> float:
    """The teachers' share of the loss at `step` (0-based): 1 at the start, falling linearly to 0 at the end."""
    return max(0.0, 1.0 - step / max(1, total_steps))


def mixed_loss(task: str, out: dict, batch: dict, weight: float):
    """(1 − weight)·gold loss + weight·cross-entropy against the batch's soft targets."""
    return (1 - weight) * out["loss"] + weight * tasks.get(task).soft_loss(out, batch[SOFT_TARGETS], batch)


class Teachers:
    """The loss of each training step: mixed with the teachers' targets for the tasks that have one."""

    def __init__(self, taught: list[str], total_steps: int):
        self.tasks, self.total_steps = list(taught), total_steps

    def loss(self, task: str, out: dict, batch: dict, step: int):
        return (
            mixed_loss(task, out, batch, teacher_weight(step, self.total_steps)) if task in self.tasks else out["loss"]
        )

    def record(self, step: int) -> dict:
        """What a step record of metrics.jsonl says of the teachers (nothing without them)."""
        return {"teacher_weight": teacher_weight(step, self.total_steps)} if self.tasks else {}


def teacher_dirs(config) -> dict[str, str]:
    """{task: teacher directory} of the tasks trained with a teacher."""
    return {task: path for task in config.tasks() if (path := config.setting(task, "teacher"))}


def check_teacher(task: str, directory: str, tokenizer, spec) -> None:
    """Refuse a teacher that cannot teach the student `spec`: no head for the task, other labels, another
    vocabulary, other segment ids. One line, naming the teacher and the difference."""
    from transformers import AutoTokenizer

    title = tasks.get(task).title

    def refuse(what: str) -> InputError:
        return InputError(Problem(directory, "", f"refused as the {title} teacher: {what}"))

    if not tasks.get(task).distillable:
        raise refuse(f"{title} cannot learn from a teacher's distributions")
    try:
        teacher = read_spec(directory)
    except InputError as err:
        raise refuse(err.problems[0].what) from None
    if task not in teacher.tasks:
        raise refuse(f"it has no {title} head (its tasks: {', '.join(tasks.get(t).title for t in teacher.tasks)})")
    ours, theirs = spec.labels_of(task), teacher.labels_of(task)
    if ours != theirs:
        raise refuse(f"its labels ({', '.join(theirs)}) differ from the student's ({', '.join(ours)})")
    vocab, student_vocab = AutoTokenizer.from_pretrained(directory).get_vocab(), tokenizer.get_vocab()
    if vocab != student_vocab:
        differ = sum(vocab.get(token) != index for token, index in student_vocab.items())
        raise refuse(
            f"its tokenizer differs from the student's ({len(vocab)} vs {len(student_vocab)} tokens, "
            f"{differ} of the student's missing or numbered otherwise)"
        )
    if teacher.segment_ids != spec.segment_ids:
        state = {True: "with", False: "without"}
        raise refuse(
            f"it was trained {state[teacher.segment_ids]} segment ids, the student {state[spec.segment_ids]} "
            "(set segment_ids alike)"
        )


def attach_teachers(data: dict, tokenizer, config, spec, device, precision: str, on_event) -> list[str]:
    """Put each teacher's distributions over its task's training features into the features (column
    SOFT_TARGETS), from the cache or from one pass of the teacher; returns the tasks that have a teacher."""
    from ..devices import autocast_for
    from ..task_data import feature_settings

    chosen = teacher_dirs(config)
    for task, directory in chosen.items():  # every refusal before any slow work
        check_teacher(task, directory, tokenizer, spec)
    settings = feature_settings(config, spec.segment_ids)
    autocast = autocast_for(device.type, precision)
    passes = set()  # the tasks whose teacher ran (not found in the cache)

    def teacher_pass(task: str, directory: str, features) -> list:
        passes.add(task)
        return soft_targets(task, directory, features, config.eval_batch_size, device, autocast)

    for task, directory in chosen.items():
        td = data[task]
        key = ("teacher", _fingerprint(directory), precision)
        key += feature_key(task, td.train, tokenizer, settings, spec.labels_of(task), True)
        build = functools.partial(teacher_pass, task, directory, td.train_features)
        td.train_features.extra[SOFT_TARGETS] = cached(config.cache_dir, key, build, kind="teacher")
        on_event(
            "teacher",
            {"task": task, "teacher": directory, "features": len(td.train_features), "cached": task not in passes},
        )
    return list(chosen)


def soft_targets(task: str, directory: str, features, batch_size: int, device, autocast) -> list:
    """One pass of the teacher over `features`: its distribution per row (a tensor), in row order."""
    import numpy as np
    import torch

    from ..inference.forward import forward_batches
    from ..model import load_model

    rows: list = [None] * len(features)
    # building the teacher draws its heads' initial weights: from a forked RNG, so that the run's own random
    # stream (dropout) is the same whether the teacher ran or its outputs came from the cache
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        teacher, _ = load_model(directory, device)
        for batch_rows, outputs, lengths in forward_batches(teacher, task, features, batch_size, device, autocast):
            for row, soft in zip(batch_rows, tasks.get(task).soft_targets(outputs, lengths)):
                rows[row] = torch.from_numpy(np.ascontiguousarray(soft, dtype=np.float32))
    return rows


def _fingerprint(directory: str) -> str:
    """A teacher by its contents: a teacher retrained in the same directory is a new cache key."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        with open(Path(directory) / name, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:24]
