"""The task registry: every task mtl knows, by name, in a stable order (the built-in ones first).

    from mtlcli import tasks
    tasks.get("ner").title          # "NER"
    tasks.names()                   # ["ner", "qa", "cls", ...]
    tasks.register(MyTask())        # a new task: config keys, training, evaluate and predict follow

Importing this is cheap (no torch): the CLI uses it for names and metric lists before anything loads.
"""

from __future__ import annotations

from ..errors import InputError
from .base import FeatureSettings, Metric, Task, TaskEvaluation
from .cls import ClsTask
from .ner import NerTask
from .qa import QaTask

__all__ = ["FeatureSettings", "Metric", "Task", "TaskEvaluation", "get", "names", "register", "unregister"]

_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    if not task.name.isidentifier() or "_" in task.name:
        raise ValueError(f"a task name is a short identifier without '_' (it prefixes config keys): {task.name!r}")
    _REGISTRY[task.name] = task
    return task


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown task '{name}'; tasks are {', '.join(_REGISTRY)}") from None


def names() -> list[str]:
    return list(_REGISTRY)


for _task in (NerTask(), QaTask(), ClsTask()):
    register(_task)
