"""What the benchmark measures and with what: its options, the one config every model shares, the counts of
warm-up and timed steps, and the backbones as the models will load them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import tasks as registry
from ..config import TrainConfig, validate
from ..errors import InputError

EventHandler = Callable[[str, dict], None]
COMPARE_MODES = ("single-task",)

# warm-up steps, timed repeats, steps per repeat, inference inputs (per task and batch size)
STANDARD_COUNTS = {"warmup": 2, "repeats": 5, "steps": 3, "infer_examples": 64}
QUICK_COUNTS = {"warmup": 1, "repeats": 3, "steps": 2, "infer_examples": 16}
# --quick: short sequences, small batches and a tiny training budget (a smoke test, not a measurement)
QUICK_CONFIG = {
    "max_length": 32,
    "qa_max_length": 128,
    "doc_stride": 32,
    "ner_train_size": 128,
    "qa_train_size": 64,
    "cls_train_size": 128,
    "epochs": 1,
}
QUICK_MAX_BATCH = 8
# inputs when the config names no data: the bundled demo excerpts (real Wikigold and SQuAD text)
DEMO_DATA = {
    "ner": ("@demo/wikigold_train.conll", "@demo/wikigold_valid.conll"),
    "qa": ("@demo/squad_train.json", "@demo/squad_valid.json"),
}
DEFAULT_TOKENIZER = "minilm"  # with --random-init: BERT's uncased WordPiece vocabulary, available offline


@dataclass
class BenchmarkOptions:
    backbones: list[str] = field(default_factory=list)  # empty: the config's backbone
    tasks: list[str] = field(default_factory=list)  # empty: the tasks the config has data for, else ner + qa
    random_init: bool = False  # build each backbone from its config: speed does not depend on the weights
    tokenizer: str = ""  # with random_init: the one tokenizer for every backbone (default: minilm)
    quick: bool = False
    warmup: int | None = None  # None: the default of the mode (standard or quick)
    repeats: int | None = None
    steps: int | None = None
    infer_examples: int | None = None
    accuracy: bool = False  # also a short fixed-budget train + evaluate per backbone
    compare: str = ""  # "single-task": the joint model against one model per task, same budget
    command: str = ""  # the command line, kept with the results


@dataclass
class Candidate:
    label: str  # what the user named
    backbone: str  # what config.backbone becomes (a prepared directory with --random-init)
    vocab_size: int = 0
    clamp: int | None = None  # with a tokenizer larger than the vocabulary: ids above it become this id


def resolve_config(base: TrainConfig, options: BenchmarkOptions) -> tuple[TrainConfig, list[str]]:
    """The config every model of the benchmark shares, and notes on where its inputs come from."""
    notes = []
    tasks = list(options.tasks) or base.tasks() or ["ner", "qa"]
    unknown = [t for t in tasks if t not in registry.names()]
    if unknown:
        raise InputError(f"--tasks: unknown task '{unknown[0]}'; tasks are {', '.join(registry.names())}")
    values = {}
    for task in registry.names():
        if task not in tasks:
            values[f"{task}_train"] = values[f"{task}_valid"] = ""
        elif not getattr(base, f"{task}_train"):
            if task not in DEMO_DATA:
                raise InputError(
                    f"no {task} data: give --{task}-train (and --{task}-valid); mtl bundles no {task} data"
                )
            values[f"{task}_train"], values[f"{task}_valid"] = DEMO_DATA[task]
            notes.append(f"{task}: the bundled demo data ({DEMO_DATA[task][0]}, {DEMO_DATA[task][1]})")
    if options.quick:
        values |= QUICK_CONFIG
        values["batch_size"] = min(base.batch_size, QUICK_MAX_BATCH)
        for key in ("ner_train_size", "qa_train_size", "cls_train_size"):
            if getattr(base, key):
                values[key] = min(getattr(base, key), QUICK_CONFIG[key])
        if "qa" in tasks and not base.qa_valid_articles:
            values["qa_valid_articles"] = "0:1"  # QA validation on the first article only
    if options.random_init:
        values["random_init"] = True
    config = base.replace(**values)
    validate(config)
    return config, notes


def counts(options: BenchmarkOptions) -> dict[str, int]:
    defaults = QUICK_COUNTS if options.quick else STANDARD_COUNTS
    chosen = {
        key: default if getattr(options, key) is None else getattr(options, key) for key, default in defaults.items()
    }
    for key, least in (("warmup", 0), ("repeats", 1), ("steps", 1), ("infer_examples", 1)):
        if chosen[key] < least:
            raise InputError(f"--{key.replace('_', '-')} must be at least {least}, got {chosen[key]}")
    return chosen


def prepare_backbones(
    config: TrainConfig, options: BenchmarkOptions, workdir: Path
) -> tuple[list[Candidate], list[str]]:
    """With --random-init, each backbone becomes a directory holding its config (the Hub's, else the shipped
    one) and the one shared tokenizer, so every model sees the very same token ids."""
    from ..backbones import load_backbone_config, load_tokenizer

    names = options.backbones or [config.backbone]
    if not options.random_init:
        if options.tokenizer:
            raise InputError("--tokenizer is for --random-init: pretrained weights need their own tokenizer")
        notes = (
            ["each backbone tokenizes the inputs with its own tokenizer; tokens/s counts its own tokens"]
            if len(names) > 1
            else []
        )
        return [Candidate(name, name) for name in names], notes
    tokenizer_name = options.tokenizer or DEFAULT_TOKENIZER
    try:
        tokenizer = load_tokenizer(tokenizer_name)
    except InputError as err:
        raise InputError(
            f"--random-init tokenizes every backbone's inputs with one tokenizer, '{tokenizer_name}', "
            f"which is not available ({err}); name another with --tokenizer"
        ) from None
    notes = [
        (
            f"random weights (--random-init): speed only. Every backbone's inputs are tokenized with the "
            f"'{tokenizer_name}' tokenizer ({type(tokenizer).__name__}, {len(tokenizer):,} tokens), so all see the "
            f"same token ids"
        )
    ]
    candidates = []
    for i, name in enumerate(names):
        backbone_config = load_backbone_config(name)
        directory = workdir / f"backbone-{i}"
        backbone_config.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        vocab = backbone_config.vocab_size
        candidate = Candidate(name, str(directory), vocab)
        if len(tokenizer) > vocab:
            candidate.clamp = min(tokenizer.unk_token_id or 0, vocab - 1)
            notes.append(
                f"{name}: vocabulary of {vocab:,} < the tokenizer's {len(tokenizer):,}: larger ids are mapped to id {candidate.clamp}"
            )
        elif vocab != len(tokenizer):
            notes.append(
                f"{name}: its embedding table keeps its own {vocab:,} rows; the inputs use the tokenizer's ids"
            )
        candidates.append(candidate)
    return candidates, notes


def clamp_ids(features, vocab: int, replacement: int) -> None:
    for ids in features.input_ids:
        for i, token in enumerate(ids):
            if token >= vocab:
                ids[i] = replacement


def phase(on_event: EventHandler, label: str, total: int) -> Callable[..., None]:
    """Announce a progress phase of `total` units; the returned function reports n more done."""
    on_event("phase", {"label": label, "total": total})
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done
        done += n
        on_event("advance", {"completed": done})

    return advance
