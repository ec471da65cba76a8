"""Task-private LoRA adapters on the shared encoder (`task_adapters = "lora:r=8"`), through peft.

Every task keeps the shared encoder's weights and adds its own LoRA adapter (Hu et al. 2021: W + (α/r)·B·A on the
target Linear layers), active only in its own forward pass; the encoder itself still trains. An export of one task
merges that task's adapter into the weights, so it is a plain model.

Only the standard library is imported here: the config validates the setting before torch loads.
"""

from __future__ import annotations

from .errors import InputError

KINDS = ("lora",)
INSTALL_HINT = "task adapters need peft: pip install 'mtl[adapters]'"
# per architecture (config.model_type), the attention projections LoRA adapts by default (the paper's query and
# value); peft's own table covers BERT and RoBERTa, not DistilBERT
DEFAULT_TARGETS = {"distilbert": ["q_lin", "v_lin"]}


def parse_adapters(text: str) -> dict:
    """'lora:r=8,alpha=16,dropout=0.1,targets=query+value' → settings ({} for ""); ValueError says what is wrong."""
    if not text:
        return {}
    kind, _, options = text.partition(":")
    if kind not in KINDS:
        raise ValueError(f"must be 'lora:r=R' with optional alpha=, dropout=, targets=a+b; got '{text}'")
    settings: dict = {"kind": kind, "r": 8, "alpha": None, "dropout": 0.1, "targets": None}
    for option in filter(None, options.split(",")):
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep or name not in ("r", "alpha", "dropout", "targets"):
            raise ValueError(f"unknown LoRA option '{option}' (r, alpha, dropout, targets)")
        try:
            settings[name] = (
                value.split("+") if name == "targets" else int(value) if name == "r" else float(value.strip())
            )
        except ValueError:
            raise ValueError(f"LoRA option {name} takes a number, got '{value}'") from None
    if settings["r"] < 1 or not 0 <= settings["dropout"] < 1 or (settings["alpha"] or 1) <= 0:
        raise ValueError(f"LoRA needs r ≥ 1, alpha > 0 and dropout in [0, 1); got '{text}'")
    return settings


def resolve_adapters(text: str, backbone_config: dict) -> dict:
    """The settings a new model keeps in its config.json: alpha (default 2·r) and the target modules filled in."""
    settings = parse_adapters(text)
    if not settings:
        return {}
    if settings["alpha"] is None:
        settings["alpha"] = 2.0 * settings["r"]
    if settings["targets"] is None:
        model_type = backbone_config.get("model_type", "")
        peft = _peft()
        mapping = peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
        settings["targets"] = DEFAULT_TARGETS.get(model_type) or mapping.get(model_type)
        if not settings["targets"]:
            raise InputError(f"task_adapters: no default LoRA target modules for {model_type}; set targets=a+b")
    return settings


def _peft():
    try:
        import peft
        import peft.utils.constants
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return peft


def add_task_adapters(encoder, settings: dict, tasks: list[str]) -> None:
    """One LoRA adapter per task, named after it, injected in place; every weight of the encoder stays trainable."""
    import warnings

    peft = _peft()
    config = peft.LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=list(settings["targets"]),
    )
    with warnings.catch_warnings():  # peft warns that a second adapter makes a multi-adapter model: that is the aim
        warnings.simplefilter("ignore")
        for task in tasks:
            peft.inject_adapter_in_model(config, encoder, adapter_name=task)
    for param in encoder.parameters():  # peft freezes the base weights; here the shared encoder trains too
        param.requires_grad_(True)


def lora_layers(module) -> list:
    from peft.tuners.lora import LoraLayer

    return [layer for layer in module.modules() if isinstance(layer, LoraLayer)]


def use_adapter(encoder, task: str) -> None:
    """Make `task`'s adapter the active one. peft's set_adapter would also freeze the other tasks' adapters
    (requires_grad), which the optimizer and a joint step (every task's loss, then one backward) must not see;
    so only the active name is set, as set_adapter does."""
    for layer in lora_layers(encoder):
        layer._active_adapter = [task]


def merged_encoder(encoder, task: str):
    """A copy of the encoder with `task`'s adapter merged into its weights and the LoRA layers unwrapped: a plain
    encoder computing what the task's forward pass computes."""
    import copy

    merged = copy.deepcopy(encoder)
    adapted = {id(layer) for layer in lora_layers(merged)}
    for name, module in list(merged.named_modules()):
        if id(module) in adapted:
            module.merge(adapter_names=[task])
            parent, _, child = name.rpartition(".")
            setattr(merged.get_submodule(parent), child, module.get_base_layer())
    return merged
