"""A BERT encoder for inference that needs torch alone: `mtl predict-*` answers in seconds, not ten.

Importing transformers' BertModel imports most of transformers (generation, distributed, integrations,
sympy, scipy, accelerate: ~4 s of a 2-core CPU's cold start). This module is the same computation, in the
same operations and order as transformers 5's BertModel with its default SDPA attention (the outputs
are bitwise equal, tests/test_cold_start.py), under the same parameter names, so a saved model's weights load
as they are. Only plain encoders are built here (model type "bert", absolute positions, GELU or ReLU);
anything else returns None and is built by transformers as before.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional

ACTIVATIONS = {"gelu": functional.gelu, "relu": functional.relu}


def native_encoder(backbone_config: dict) -> nn.Module | None:
    """The encoder of this backbone config, its weights still to be loaded (the embeddings are left
    uninitialized), or None where it is not a plain BERT encoder."""
    config = SimpleNamespace(**backbone_config)
    plain = (
        backbone_config.get("model_type") == "bert"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and getattr(config, "hidden_act", None) in ACTIVATIONS
        and not getattr(config, "is_decoder", False)
        and not getattr(config, "add_cross_attention", False)
        and not getattr(config, "chunk_size_feed_forward", 0)
    )
    if not plain:
        return None
    return BertEncoder(config)


class Output(SimpleNamespace):
    """What transformers' encoders return, as far as mtl reads it."""

    last_hidden_state: torch.Tensor


class BertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([Layer(config) for _ in range(config.num_hidden_layers)])
        self.pooler = nn.Module()  # not used by mtl's heads, kept so that the saved weights load unchanged
        self.pooler.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> Output:
        hidden = self.embeddings(input_ids, token_type_ids)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):  # no padding: no mask, as transformers
            batch, length = input_ids.shape
            mask = attention_mask.bool()[:, None, None, :].expand(batch, 1, length, length)
        for layer in self.encoder.layer:
            hidden = layer(hidden, mask)
        return Output(last_hidden_state=hidden)


class Embeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = _embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.position_embeddings = _embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = _embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids, token_type_ids=None):
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device)[None]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(embeddings + self.position_embeddings(positions))


def _embedding(rows: int, width: int, padding_idx: int | None = None) -> nn.Embedding:
    # given its weight, nn.Embedding skips its random init (the largest: the weights are loaded next)
    return nn.Embedding(rows, width, padding_idx=padding_idx, _weight=torch.empty(rows, width))


class Layer(nn.Module):
    def __init__(self, config):
        super().__init__()
        hidden = config.hidden_size
        self.heads = config.num_attention_heads
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        for name in ("query", "key", "value"):
            setattr(self.attention.self, name, nn.Linear(hidden, hidden))
        self.attention.output = Residual(hidden, hidden, config.layer_norm_eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(hidden, config.intermediate_size)
        self.output = Residual(config.intermediate_size, hidden, config.layer_norm_eps)
        self.activation = ACTIVATIONS[config.hidden_act]

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attention = self.attention.self
        shape = (*hidden.shape[:-1], self.heads, -1)
        query, key, value = (
            getattr(attention, n)(hidden).view(shape).transpose(1, 2) for n in ("query", "key", "value")
        )
        scale = query.shape[-1] ** -0.5
        context = functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
        context = context.transpose(1, 2).contiguous().reshape(*hidden.shape[:-1], -1).contiguous()
        hidden = self.attention.output(context, hidden)
        return self.output(self.activation(self.intermediate.dense(hidden)), hidden)


class Residual(nn.Module):
    """dense, then LayerNorm of the sum with the residual (BertSelfOutput, BertOutput)."""

    def __init__(self, inputs: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(inputs, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)
