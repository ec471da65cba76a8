"""One typed training config; presets (TOML) compose left to right, then `--set key=value` wins.

Only the standard library is imported here so that `--dry-run` and bad-usage errors answer at once.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InputError, Problem

TASKS = ("ner", "qa", "cls")
STEP_MODES = ("sampled", "joint")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
WEIGHTINGS = ("static", "uncertainty", "gradnorm", "dwa")
EVAL_STRATEGIES = ("epoch", "end")


@dataclass
class TrainConfig:
    # backbone: a local directory, an alias (see backbones.py) or a Hub id
    backbone: str = "minilm"
    random_init: bool = False
    # data: any subset of tasks; a task is trained when its train file is given
    ner_train: str = ""
    ner_valid: str = ""
    qa_train: str = ""
    qa_valid: str = ""
    cls_train: str = ""
    cls_valid: str = ""
    ner_train_size: int = 0  # 0 = all
    qa_train_size: int = 0
    cls_train_size: int = 0
    # SQuAD articles to use, as a Python slice "start:stop" over the file's articles ("" = all)
    qa_train_articles: str = ""
    qa_valid_articles: str = ""
    skip_bad: bool = False
    # lengths
    max_length: int = 128  # NER and classification
    qa_max_length: int = 384
    doc_stride: int = 128
    max_answer_length: int = 30
    # optimisation
    epochs: int = 2
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    head_dropout: float = 0.1
    # multi-task
    step_mode: str = "sampled"
    sampling: str = "round_robin"  # round_robin | proportional | temperature:T | annealed
    weighting: str = "static"
    lambda_ner: float = 1.0
    lambda_qa: float = 1.0
    lambda_cls: float = 1.0
    weighting_lr: float = 0.025  # learning rate of learned task weights (uncertainty, gradnorm)
    gradnorm_alpha: float = 1.5
    dwa_temperature: float = 2.0
    dwa_period: int = 0  # DWA's loss ratios over windows of N steps (0 = over epochs, as in the paper)
    pcgrad: bool = False  # project conflicting task gradients (joint step mode)
    interference_every: int = 0  # log task-gradient cosines every N steps (joint step mode; 0 = off)
    # regularisation
    encoder_dropout: float = -1.0  # hidden + attention dropout of the encoder (-1 = the backbone's own)
    layer_lr_decay: float = 1.0  # lr of layer i = lr · decay^(layers − i); 1 = one lr for all
    freeze_layers: int = 0  # freeze the embeddings and the first K encoder layers
    # augmentation of the training data (classification text; NER label-safe)
    augment: str = ""  # comma list of synonym, insert, swap, delete, or "all"
    augment_prob: float = 0.1
    augment_copies: int = 1
    backtranslate_models: str = ""  # "DIR_EN_X,DIR_X_EN": local translation models for classification
    # hardware
    device: str = "auto"
    precision: str = "auto"  # auto = fp16 AMP on CUDA, bf16 autocast on CPUs that support it
    group_by_length: bool = True
    threads: int = 0  # 0 = torch's default
    # run
    seed: int = 42
    patience: int = 0  # early stopping: epochs without improvement of any task (0 = off)
    eval_strategy: str = "epoch"  # validate after every epoch, or only after the last ("end": fixed-budget runs)
    save_every: int = 0  # also save a resumable checkpoint every N steps (0 = at the end of each epoch only)
    keep_checkpoints: int = 2
    output_dir: str = "runs/mtl"
    cache_dir: str = ".mtl-cache"
    description: str = ""

    def tasks(self) -> list[str]:
        return [task for task in TASKS if getattr(self, f"{task}_train")]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_TYPES = {f.name: f.type for f in fields(TrainConfig)}


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in _preset_dir().iterdir() if p.name.endswith(".toml"))


def _preset_dir():
    return resources.files("mtlcli.presets")


def load_preset(name: str) -> dict[str, Any]:
    """A preset is a shipped name or a path to a user TOML file."""
    path = Path(name)
    if name.endswith(".toml") or path.exists():
        if not path.is_file():
            raise InputError(Problem(name, "", "preset file not found"))
        text, source = path.read_text(encoding="utf-8"), name
    else:
        shipped = _preset_dir() / f"{name}.toml"
        if not shipped.is_file():
            raise InputError(f"unknown preset '{name}'; valid presets: {', '.join(preset_names())}")
        text, source = shipped.read_text(encoding="utf-8"), f"preset {name}"
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(Problem(source, "", f"not valid TOML: {err}")) from None
    return {key: _check_value(key, value, source) for key, value in values.items()}


def _check_value(key: str, value: Any, source: str) -> Any:
    if key not in FIELD_TYPES:
        raise InputError(Problem(source, key, f"unknown key '{key}'; valid keys: {', '.join(FIELD_TYPES)}"))
    expected = FIELD_TYPES[key]
    if expected == "bool" and not isinstance(value, bool):
        raise InputError(Problem(source, key, f"'{key}' must be true or false, got {value!r}"))
    if expected == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise InputError(Problem(source, key, f"'{key}' must be an integer, got {value!r}"))
    if expected == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise InputError(Problem(source, key, f"'{key}' must be a number, got {value!r}"))
    if expected == "str" and not isinstance(value, str):
        raise InputError(Problem(source, key, f"'{key}' must be a string, got {value!r}"))
    return float(value) if expected == "float" else value


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is read as TOML when it parses, else as a string."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep:
        raise InputError(Problem("--set", assignment, "expected key=value"))
    if key not in FIELD_TYPES:
        raise InputError(Problem("--set", key, f"unknown key '{key}'; valid keys: {', '.join(FIELD_TYPES)}"))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if FIELD_TYPES[key] == "str":
        value = str(raw) if not isinstance(value, str) else value
    return key, _check_value(key, value, "--set")


def resolve(presets: list[str], assignments: list[str] = (), overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Compose presets left to right, then `--set`, then explicit flags (overrides, None = not given)."""
    values: dict[str, Any] = {}
    for name in presets:
        values.update(load_preset(name))
    for assignment in assignments:
        key, value = parse_assignment(assignment)
        values[key] = value
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _check_value(key, value, f"--{key.replace('_', '-')}")
    config = TrainConfig(**values)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Config-time errors: everything that would otherwise fail late in a run."""
    problems = []

    def bad(key: str, what: str) -> None:
        problems.append(Problem("config", key, what))

    if config.step_mode not in STEP_MODES:
        bad("step_mode", f"must be one of {', '.join(STEP_MODES)}, got '{config.step_mode}'")
    if config.precision not in PRECISIONS:
        bad("precision", f"must be one of {', '.join(PRECISIONS)}, got '{config.precision}'")
    if config.device not in DEVICES:
        bad("device", f"must be one of {', '.join(DEVICES)}, got '{config.device}'")
    if config.weighting not in WEIGHTINGS:
        bad("weighting", f"must be one of {', '.join(WEIGHTINGS)}, got '{config.weighting}'")
    if config.eval_strategy not in EVAL_STRATEGIES:
        bad("eval_strategy", f"must be one of {', '.join(EVAL_STRATEGIES)}, got '{config.eval_strategy}'")
    elif config.eval_strategy == "end" and config.patience:
        bad("patience", "early stopping needs a validation after every epoch: set eval_strategy=epoch")
    if config.dwa_period < 0:
        bad("dwa_period", f"must be 0 (epochs) or a number of steps, got {config.dwa_period}")
    joint_only = [key for key, on in (("weighting=gradnorm", config.weighting == "gradnorm"), ("pcgrad", config.pcgrad),
                                      ("interference_every", config.interference_every > 0)) if on]
    if joint_only and config.step_mode != "joint":
        bad("step_mode", f"{', '.join(joint_only)} needs every task's loss in a step: set step_mode=joint")
    if not 0 <= config.head_dropout < 1 or not (config.encoder_dropout == -1 or 0 <= config.encoder_dropout < 1):
        bad("head_dropout", "dropouts must be in [0, 1) (encoder_dropout -1 keeps the backbone's)")
    if not 0 < config.layer_lr_decay <= 1:
        bad("layer_lr_decay", f"must be in (0, 1], got {config.layer_lr_decay}")
    if config.backtranslate_models and not config.cls_train:
        bad("backtranslate_models", "back-translation augments classification text: give cls_train")
    try:
        parse_sampling(config.sampling)
    except ValueError as err:
        bad("sampling", str(err))
    for key in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "max_length", "qa_max_length", "keep_checkpoints"):
        if getattr(config, key) < 1:
            bad(key, f"must be at least 1, got {getattr(config, key)}")
    if config.lr <= 0:
        bad("lr", f"must be positive, got {config.lr}")
    if not 0 <= config.warmup_ratio < 1:
        bad("warmup_ratio", f"must be in [0, 1), got {config.warmup_ratio}")
    # a QA window holds [CLS] question [SEP] context [SEP]; the stride must leave room for new context
    if not 0 < config.doc_stride < config.qa_max_length // 2:
        bad("doc_stride", f"must be between 1 and half of qa_max_length ({config.qa_max_length // 2}), got {config.doc_stride}")
    for task in TASKS:
        if getattr(config, f"{task}_valid") and not getattr(config, f"{task}_train"):
            bad(f"{task}_valid", f"given without {task}_train")
    for key in ("qa_train_articles", "qa_valid_articles"):
        try:
            parse_slice(getattr(config, key))
        except ValueError:
            bad(key, f"must be a slice like '5:' or '0:5', got '{getattr(config, key)}'")
    if problems:
        raise InputError(problems)


def parse_sampling(sampling: str) -> tuple[str, float]:
    """'round_robin' | 'proportional' | 'temperature:T' | 'annealed' → (name, temperature)."""
    name, _, value = sampling.partition(":")
    if name in ("round_robin", "proportional", "annealed") and not value:
        return name, 1.0
    if name == "temperature":
        try:
            temperature = float(value)
        except ValueError:
            temperature = 0.0
        if temperature > 0:
            return name, temperature
        raise ValueError(f"temperature sampling needs a positive T, e.g. 'temperature:2', got '{sampling}'")
    raise ValueError(f"must be round_robin, proportional, temperature:T or annealed, got '{sampling}'")


def parse_slice(text: str) -> slice:
    if not text:
        return slice(None)
    start, sep, stop = text.partition(":")
    if not sep:
        raise ValueError(text)
    return slice(int(start) if start else None, int(stop) if stop else None)


def to_toml(config: TrainConfig) -> str:
    lines = []
    for key, value in config.to_dict().items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, str):
            rendered = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            rendered = repr(value)
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"
