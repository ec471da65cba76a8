"""A run directory: created empty, its train_config.toml written so that `--resume DIR` works wherever the
directory has been copied and from any working directory."""

from __future__ import annotations

import os
from pathlib import Path

from .. import tasks
from ..config import TrainConfig, task_key
from ..errors import InputError, Problem
from ..task_data import BUNDLED_PREFIX

CONFIG_FILE = "train_config.toml"


def prepare_output_dir(path: Path, overwrite: bool) -> None:
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise InputError(
            Problem(
                str(path),
                "",
                "output directory is not empty; pass --overwrite, --resume it, or choose another --output-dir",
            )
        )
    path.mkdir(parents=True, exist_ok=True)


def _data_keys() -> list[str]:
    return [task_key(task, split) for task in tasks.names() for split in ("train", "valid")]


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def portable_config(config: TrainConfig) -> TrainConfig:
    """The config with every local path absolute (data files, feature cache, a local backbone or translation
    models), so a resumed run finds them from any working directory. Bundled `@demo/` data stays as it is."""
    changes = {
        key: _absolute(value)
        for key in _data_keys() + [task_key(task, "teacher") for task in tasks.names()] + ["cache_dir"]
        if (value := getattr(config, key)) and not value.startswith(BUNDLED_PREFIX)
    }
    if Path(config.backbone).expanduser().is_dir():  # else a packaged alias or a Hub id
        changes["backbone"] = _absolute(config.backbone)
    if config.backtranslate_models:
        changes["backtranslate_models"] = ",".join(
            _absolute(p) if Path(p).expanduser().is_dir() else p for p in config.backtranslate_models.split(",")
        )
    return config.replace(**changes)


def resume_config(run_dir: str | Path) -> TrainConfig:
    """The configuration a run was started with (its train_config.toml), continuing `run_dir` itself:
    a run directory copied elsewhere resumes where it now is, not where it was started."""
    from ..config import resolve

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise InputError(Problem(str(path), "", "not a training run directory (train_config.toml missing)"))
    config = resolve([str(path)]).replace(output_dir=str(run_dir))
    missing = [
        Problem(str(path), key, f"no such file '{value}' (moved? point {key} in {CONFIG_FILE} at it)")
        for key in _data_keys()
        if (value := getattr(config, key)) and not value.startswith(BUNDLED_PREFIX) and not Path(value).is_file()
    ]
    if missing:
        raise InputError(missing)
    return config
