"""The model card (`README.md`, the Hub convention) written into every export."""

from __future__ import annotations

from pathlib import Path

import tomllib

from .. import __version__, tasks

USAGE = {
    "ner": (
        "from transformers import pipeline\n"
        'tagger = pipeline("token-classification", model="{path}", aggregation_strategy="first")\n'
        'tagger("Apple Inc. was founded by Steve Jobs in California.")'
    ),
    "qa": (
        "from transformers import AutoModelForQuestionAnswering, AutoTokenizer\n"
        'model, tokenizer = AutoModelForQuestionAnswering.from_pretrained("{path}"), '
        'AutoTokenizer.from_pretrained("{path}")\n'
        'logits = model(**tokenizer("Who founded Apple?", "Apple was founded by Steve Jobs.", '
        'return_tensors="pt"))'
    ),
    "cls": (
        "from transformers import pipeline\n"
        'classifier = pipeline("text-classification", model="{path}", top_k=None)\n'
        'classifier("I lost my card")'
    ),
}
SETTINGS = (
    "backbone",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_ratio",
    "max_length",
    "qa_max_length",
    "doc_stride",
    "step_mode",
    "sampling",
    "weighting",
    "task_adapters",
    "seed",
)


def _run_files(model_dir: Path) -> tuple[dict, list[dict]]:
    """The training run's config and epoch records, when the model directory sits in a run (runs/x/last)."""
    from ..evaluate_run import epoch_records, run_log

    config_file = model_dir.resolve().parent / "train_config.toml"
    try:
        config = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        config = {}
    log = run_log(model_dir)
    return config, epoch_records(log) if log else []


def model_card(model_dir, spec, task: str, hf_model) -> str:
    definition = tasks.get(task)
    config, epochs = _run_files(Path(model_dir))
    lines = [
        f"# {definition.title} model exported from mtl",
        "",
        f"A `{hf_model.config.architectures[0]}` exported by `mtl export` (mtl {__version__}) from the multi-task "
        f"model `{model_dir}` (tasks: {', '.join(tasks.get(t).title for t in spec.tasks)}); this directory "
        f"holds its {definition.title} head on the shared encoder.",
        "",
        "## Use",
        "",
        "```python",
        USAGE[task].format(path="PATH/TO/THIS/DIRECTORY"),
        "```",
        "",
        "## Model",
        "",
        f"- backbone: `{spec.backbone}` ({hf_model.config.model_type}, "
        f"{sum(p.numel() for p in hf_model.parameters()):,} parameters)",
        f"- max length {spec.max_length if task != 'qa' else spec.qa_max_length}"
        + (f", document stride {spec.doc_stride}" if task == "qa" else ""),
    ]
    labels = spec.labels_of(task)
    if labels:
        lines.append(f"- labels ({len(labels)}): {', '.join(f'`{label}`' for label in labels)}")
    if config:
        data = [f"`{config[key]}`" for key in (f"{task}_train", f"{task}_valid") if config.get(key)]
        lines += ["", "## Training", "", f"- data: {' (train), '.join(data)}{' (validation)' if len(data) > 1 else ''}"]
        lines += [f"- {key}: `{config[key]}`" for key in SETTINGS if key in config]
    scores = [(record["epoch"], record["valid"][task]) for record in epochs if task in record.get("valid", {})]
    if scores:
        lines += [
            "",
            "## Validation metrics",
            "",
            "| epoch | " + " | ".join(m.label for m in definition.metrics) + " |",
            "|---" * (len(definition.metrics) + 1) + "|",
        ]
        for epoch, values in scores:
            cells = [f"{m.percent(values[m.key]):.2f}" for m in definition.metrics if m.key in values]
            lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Licence",
        "",
        "The weights derive from the backbone and the training data: their licences apply (see the backbone's "
        "model card and the data's terms).",
        "",
    ]
    return "\n".join(lines)
