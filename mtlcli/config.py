"""One typed training config; presets (TOML) compose left to right, then `--set key=value` wins.

Only the standard library is imported here so that `--dry-run` and bad-usage errors answer at once.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from . import tasks as registry
from .adapters import parse_adapters
from .data.hf_data import parse_columns
from .devices import PRECISIONS
from .errors import InputError, Problem

# Every task has these keys, spelt {task}_train, {task}_valid, {task}_train_size, {task}_teacher and lambda_{task}:
# (type, default). {task}_teacher: a single-task mtl model directory distilled into the student (training/distill.py).
# For Hugging Face datasets inputs (mtlcli.data.hf_data): the DatasetDict split of each file ("" = train, resp.
# validation/valid/dev/test) and a column mapping ("words,tags" in the task's column order, or "tokens:words,...").
TASK_KEYS = {
    "train": ("str", ""),
    "valid": ("str", ""),
    "train_size": ("int", 0),
    "teacher": ("str", ""),
    "lambda": ("float", 1.0),
    "train_split": ("str", ""),
    "valid_split": ("str", ""),
    "columns": ("str", ""),
}
STEP_MODES = ("sampled", "joint")
DEVICES = ("auto", "cpu", "cuda", "mps")
WEIGHTINGS = ("static", "uncertainty", "gradnorm", "dwa")
EVAL_STRATEGIES = ("epoch", "end")
TRACKERS = ("tensorboard", "mlflow")  # report_to (mtlcli.training.logs)
NER_DECODINGS = ("argmax", "bio")


@dataclass
class TrainConfig:
    # backbone: a local directory, an alias (see backbones.py) or a Hub id
    backbone: str = "minilm"
    random_init: bool = False
    # data: per task (TASK_KEYS) {task}_train, {task}_valid, {task}_train_size (0 = all), held in task_settings;
    # a task is trained when its train file is given
    # SQuAD articles to use, as a Python slice "start:stop" over the file's articles ("" = all)
    qa_train_articles: str = ""
    qa_valid_articles: str = ""
    skip_bad: bool = False
    # lengths
    max_length: int = 128  # NER and classification
    qa_max_length: int = 384
    doc_stride: int = 128
    max_answer_length: int = 30
    # NER tags from each word's most likely label (argmax), or the best sequence without an I-X after O or another
    # type (bio: a Viterbi search); kept in the model's config.json, so evaluate and predict-ner decode alike
    ner_decoding: str = "argmax"
    # FLERT (Schweter & Akbik 2020): each NER window also holds up to this many sub-tokens of the neighbouring
    # sentences of its -DOCSTART- document on each side, as context only (no loss, no prediction); 0 = none
    ner_context: int = 0
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
    # question + context pairs with the tokenizer's segment ids (backbones with segment embeddings); off by
    # default: on the MiniLM they cost 16 QA F1 points in the demo (benchmarks/segment_ids.py). Exports are exact
    # either way.
    segment_ids: bool = False
    # multi-task
    step_mode: str = "sampled"
    sampling: str = "round_robin"  # round_robin | proportional | temperature:T | annealed
    weighting: str = "static"  # static: the per-task lambda_{task} (TASK_KEYS)
    weighting_lr: float = 0.025  # learning rate of learned task weights (uncertainty, gradnorm)
    gradnorm_alpha: float = 1.5
    dwa_temperature: float = 2.0
    dwa_period: int = 0  # DWA's loss ratios over windows of N steps (0 = over epochs, as in the paper)
    pcgrad: bool = False  # project conflicting task gradients (joint step mode)
    interference_every: int = 0  # log task-gradient cosines every N steps (joint step mode; 0 = off)
    # task-private parameters on the shared encoder: "lora:r=8" (options alpha=, dropout=, targets=a+b; adapters.py)
    task_adapters: str = ""
    # regularisation
    encoder_dropout: float = -1.0  # hidden + attention dropout of the encoder (-1 = the backbone's own)
    layer_lr_decay: float = 1.0  # lr of layer i = lr · decay^(layers − i); 1 = one lr for all
    head_lr_mult: float = 1.0  # the task heads' learning rate: lr × this (randomly initialized heads may want more)
    freeze_layers: int = 0  # freeze the embeddings and the first K encoder layers
    # augmentation of the training data (classification text; NER label-safe)
    augment: str = ""  # comma list of synonym, insert, swap, delete, or "all"
    augment_prob: float = 0.1
    augment_copies: int = 1
    backtranslate_models: str = ""  # "DIR_EN_X,DIR_X_EN": local translation models for classification
    # hardware
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 on CPUs and GPUs that have it, else fp16 AMP on CUDA, else fp32
    group_by_length: bool = True
    pack_sequences: bool = True  # per-token tasks (NER): shuffled batches, sentences sharing rows (training.packing)
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
    # experiment trackers the step and epoch records also go to: comma list of tensorboard, mlflow; or none
    report_to: str = "none"
    # the per-task keys, {task: {key: value}} (only those set; see `setting`)
    task_settings: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict, repr=False)

    def setting(self, task: str, key: str) -> Any:
        return self.task_settings.get(task, {}).get(key, TASK_KEYS[key][1])

    def __getattr__(self, name: str) -> Any:
        """The per-task keys read like fields: config.ner_train, config.lambda_qa."""
        found = task_keys().get(name) if not name.startswith("_") and name != "task_settings" else None
        if found is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return self.setting(*found)

    def tasks(self) -> list[str]:
        return [task for task in registry.names() if self.setting(task, "train")]

    def to_dict(self) -> dict[str, Any]:
        """Every key, the per-task ones included, in the order a TOML file lists them."""
        values = {}
        for f in fields(self):
            if f.name == "task_settings":
                continue
            values[f.name] = getattr(self, f.name)
            if f.name == "random_init":
                values |= {key: self.setting(*where) for key, where in task_keys().items() if where[1] != "lambda"}
            elif f.name == "weighting":
                values |= {key: self.setting(*where) for key, where in task_keys().items() if where[1] == "lambda"}
        return values

    def replace(self, **values: Any) -> TrainConfig:
        return build_config(self.to_dict() | values)


def task_key(task: str, key: str) -> str:
    return f"lambda_{task}" if key == "lambda" else f"{task}_{key}"


def task_keys() -> dict[str, tuple[str, str]]:
    """Config key → (task, key) for every registered task."""
    return {task_key(task, key): (task, key) for task in registry.names() for key in TASK_KEYS}


def field_types() -> dict[str, str]:
    types = {f.name: f.type for f in fields(TrainConfig) if f.name != "task_settings"}
    return types | {name: TASK_KEYS[key][0] for name, (_, key) in task_keys().items()}


def build_config(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from flat keys (per-task keys such as ner_train included)."""
    per_task = task_keys()
    settings: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if name in per_task:
            task, key = per_task[name]
            settings.setdefault(task, {})[key] = value
    core = {name: value for name, value in values.items() if name not in per_task}
    return TrainConfig(**core, task_settings=settings)


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
    if key not in field_types():
        raise InputError(Problem(source, key, f"unknown key '{key}'; valid keys: {', '.join(field_types())}"))
    expected = field_types()[key]
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
    if key not in field_types():
        raise InputError(Problem("--set", key, f"unknown key '{key}'; valid keys: {', '.join(field_types())}"))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if field_types()[key] == "str":
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
    config = build_config(values)
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
    if config.device not in DEVICES and not re.fullmatch(r"cuda:[0-9]+", config.device):  # cuda:N: GPU number N
        bad("device", f"must be one of {', '.join(DEVICES)} or cuda:N, got '{config.device}'")
    if config.weighting not in WEIGHTINGS:
        bad("weighting", f"must be one of {', '.join(WEIGHTINGS)}, got '{config.weighting}'")
    if config.eval_strategy not in EVAL_STRATEGIES:
        bad("eval_strategy", f"must be one of {', '.join(EVAL_STRATEGIES)}, got '{config.eval_strategy}'")
    elif config.eval_strategy == "end" and config.patience:
        bad("patience", "early stopping needs a validation after every epoch: set eval_strategy=epoch")
    unknown = [name for name in config.report_to.split(",") if name not in (*TRACKERS, "none")]
    if unknown or (config.report_to != "none" and "none" in config.report_to.split(",")):
        bad("report_to", f"must be 'none' or a comma list of {', '.join(TRACKERS)}, got '{config.report_to}'")
    if config.dwa_period < 0:
        bad("dwa_period", f"must be 0 (epochs) or a number of steps, got {config.dwa_period}")
    joint_only = [
        key
        for key, on in (
            ("weighting=gradnorm", config.weighting == "gradnorm"),
            ("pcgrad", config.pcgrad),
            ("interference_every", config.interference_every > 0),
        )
        if on
    ]
    if joint_only and config.step_mode != "joint":
        bad("step_mode", f"{', '.join(joint_only)} needs every task's loss in a step: set step_mode=joint")
    if not 0 <= config.head_dropout < 1 or not (config.encoder_dropout == -1 or 0 <= config.encoder_dropout < 1):
        bad("head_dropout", "dropouts must be in [0, 1) (encoder_dropout -1 keeps the backbone's)")
    if not 0 < config.layer_lr_decay <= 1:
        bad("layer_lr_decay", f"must be in (0, 1], got {config.layer_lr_decay}")
    try:
        parse_adapters(config.task_adapters)
    except ValueError as err:
        bad("task_adapters", str(err))
    if config.ner_context < 0:
        bad("ner_context", f"must be 0 (no document context) or a number of sub-tokens, got {config.ner_context}")
    if config.head_lr_mult <= 0:
        bad("head_lr_mult", f"must be positive, got {config.head_lr_mult}")
    if config.ner_decoding not in NER_DECODINGS:
        bad("ner_decoding", f"must be one of {', '.join(NER_DECODINGS)}, got '{config.ner_decoding}'")
    if config.backtranslate_models and not config.cls_train:
        bad("backtranslate_models", "back-translation augments classification text: give cls_train")
    try:
        parse_sampling(config.sampling)
    except ValueError as err:
        bad("sampling", str(err))
    for key in (
        "epochs",
        "batch_size",
        "eval_batch_size",
        "grad_accum",
        "max_length",
        "qa_max_length",
        "keep_checkpoints",
    ):
        if getattr(config, key) < 1:
            bad(key, f"must be at least 1, got {getattr(config, key)}")
    if config.lr <= 0:
        bad("lr", f"must be positive, got {config.lr}")
    if not 0 <= config.warmup_ratio < 1:
        bad("warmup_ratio", f"must be in [0, 1), got {config.warmup_ratio}")
    # a QA window holds [CLS] question [SEP] context [SEP]; the stride must leave room for new context
    if not 0 < config.doc_stride < config.qa_max_length // 2:
        bad(
            "doc_stride",
            f"must be between 1 and half of qa_max_length ({config.qa_max_length // 2}), got {config.doc_stride}",
        )
    for task in registry.names():
        for key in ("valid", "teacher"):
            if config.setting(task, key) and not config.setting(task, "train"):
                bad(task_key(task, key), f"given without {task_key(task, 'train')}")
        try:
            parse_columns(task, config.setting(task, "columns"))
        except ValueError as err:
            bad(task_key(task, "columns"), str(err))
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


# TOML basic strings: these by their short escapes, other control characters as \uXXXX
_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def _toml_string(value: str) -> str:
    return (
        '"'
        + "".join(_TOML_ESCAPES.get(c) or (f"\\u{ord(c):04X}" if c < " " or c == "\x7f" else c) for c in value)
        + '"'
    )


def to_toml(config: TrainConfig) -> str:
    lines = []
    for key, value in config.to_dict().items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, str):
            rendered = _toml_string(value)
        else:
            rendered = repr(value)
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"
