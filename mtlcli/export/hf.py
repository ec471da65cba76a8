"""`mtl export --format hf`: one task of an mtl model as a standard Hugging Face model directory.

The shared encoder's weights go under the architecture's base-model prefix (`bert.`, `distilbert.`,
`roberta.`), the head under the architecture's own names (`classifier`, `qa_outputs`), and the result is
loaded back with `AutoModelFor...` before it is kept: a key that is missing or left over fails the export.
"""

from __future__ import annotations

from pathlib import Path

from .. import tasks
from ..errors import InputError

# task → (AutoModel class, architecture suffix)
HEADS = {
    "ner": ("AutoModelForTokenClassification", "ForTokenClassification"),
    "qa": ("AutoModelForQuestionAnswering", "ForQuestionAnswering"),
    "cls": ("AutoModelForSequenceClassification", "ForSequenceClassification"),
}
# the head's parameters (mtl name under heads.TASK → the architecture's name; {base}: its base-model prefix),
# per task and, for classification, per head shape (mtlcli.tasks.cls_heads)
HEAD_NAMES = {
    "ner": {"": "classifier"},
    "qa": {"": "qa_outputs"},
    "cls/bert": {"pooler": "{base}.pooler.dense", "classifier": "classifier"},
    "cls/distilbert": {"pre_classifier": "pre_classifier", "classifier": "classifier"},
    "cls/roberta": {"dense": "classifier.dense", "out_proj": "classifier.out_proj"},
}


def _head_key(spec, task: str) -> str:
    return f"{task}/{spec.heads.get(task, {}).get('shape', 'linear')}" if task == "cls" else task


def exportable(spec, task: str) -> str | None:
    """None when the task's head maps exactly onto a Hugging Face architecture, else the one-line reason."""
    if task not in spec.tasks:
        have = ", ".join(tasks.get(t).title for t in spec.tasks) or "none"
        return f"the model has no {tasks.get(task).title} head (its tasks: {have})"
    if task not in HEADS:
        return f"mtl has no Hugging Face architecture for {tasks.get(task).title}"
    if _head_key(spec, task) not in HEAD_NAMES:
        return (
            f"its {tasks.get(task).title} head (one Linear layer on the first token, as mtl built it before "
            "heads took the backbone's shape) has no exact counterpart in Hugging Face's sequence classifiers, "
            "which put a pooler or pre-classifier before it; retrain with this mtl version"
        )
    return None


def hf_config(spec, task: str):
    from transformers import AutoConfig

    config = AutoConfig.for_model(**spec.backbone_config)
    prefix = type(config).__name__.removesuffix("Config")
    config.architectures = [prefix + HEADS[task][1]]
    labels = spec.labels_of(task)
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
    else:
        config.num_labels = 2  # start and end logits
    return config


def hf_state_dict(model, task: str, hf_model) -> dict:
    """The mtl weights under the architecture's names; encoder parts the architecture lacks (the pooler of
    BERT's token classifiers) are left out, since no head of this task reads them; the task's adapter, if any, is
    merged into the encoder. A model trained with segment 0
    everywhere gets segment 0's embedding in every row: Hugging Face pipelines pass the tokenizer's segment ids
    (1 for a QA context), and the export must compute what mtl computed."""
    from ..adapters import merged_encoder

    prefix = hf_model.base_model_prefix
    wanted = set(hf_model.state_dict())
    encoder = merged_encoder(model.encoder, task) if model.spec.adapters else model.encoder  # the task's own weights
    state = {
        f"{prefix}.{name}": tensor for name, tensor in encoder.state_dict().items() if f"{prefix}.{name}" in wanted
    }
    if not model.spec.segment_ids:
        for name, tensor in state.items():
            if name.endswith("token_type_embeddings.weight") and tensor.shape[0] > 1:
                state[name] = tensor[:1].expand_as(tensor).clone()
    for ours, theirs in HEAD_NAMES[_head_key(model.spec, task)].items():
        module = model.heads[task].get_submodule(ours)
        theirs = theirs.format(base=prefix)
        state |= {f"{theirs}.{name}": tensor for name, tensor in module.state_dict().items()}
    return state


def build_hf_model(model, task: str):
    """The Hugging Face model of one task with the mtl weights, checked key by key."""
    import torch
    import transformers

    config = hf_config(model.spec, task)
    hf_model = getattr(transformers, HEADS[task][0]).from_config(config, dtype=torch.float32)
    result = hf_model.load_state_dict(hf_state_dict(model, task, hf_model), strict=False)
    problems = [f"missing {k}" for k in result.missing_keys] + [f"unexpected {k}" for k in result.unexpected_keys]
    if problems:
        raise InputError(f"cannot export {task} exactly: {problems[0]} (and {len(problems) - 1} more)")
    return hf_model.eval()


def export_hf(model, tokenizer, model_dir: str | Path, task: str, staging: Path) -> None:
    """Write one task's Hugging Face directory (weights, config.json, tokenizer, model card) into `staging`; the
    caller has checked that the task is `exportable`."""
    from .card import model_card

    hf_model = build_hf_model(model, task)
    hf_model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "README.md").write_text(model_card(model_dir, model.spec, task, hf_model), encoding="utf-8")
