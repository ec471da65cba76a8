"""Classification heads in the shape of each backbone's own sequence classifier, so that a Hugging Face
export is exact (`AutoModelForSequenceClassification` computes what mtl computed):

  bert        the pooler (dense + tanh on the first token), dropout, classifier   (BertForSequenceClassification)
  distilbert  pre_classifier + ReLU on the first token, dropout, classifier        (DistilBertForSequenceClassification)
  roberta     dropout, dense + tanh on the first token, dropout, out_proj          (RobertaClassificationHead)
  linear      dropout + one Linear on the first token: models saved before these shapes (not exportable); a
              plain nn.Linear, so that its weights keep their names and inference swaps it like any Linear
"""

from __future__ import annotations

import torch
from torch import nn

SHAPES = ("bert", "distilbert", "roberta", "linear")
# Hugging Face model types whose sequence classifier has each shape
SHAPE_OF_MODEL_TYPE = {
    "bert": "bert",
    "distilbert": "distilbert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "camembert": "roberta",
}


class ShapedHead(nn.Module):
    """A head of one of the backbones' shapes: forward(hidden states, dropout) -> logits."""


class BertHead(ShapedHead):
    def __init__(self, hidden: int, classes: int):
        super().__init__()
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, hidden: torch.Tensor, dropout: nn.Module) -> torch.Tensor:
        return self.classifier(dropout(torch.tanh(self.pooler(hidden[:, 0]))))


class DistilBertHead(ShapedHead):
    def __init__(self, hidden: int, classes: int):
        super().__init__()
        self.pre_classifier = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, hidden: torch.Tensor, dropout: nn.Module) -> torch.Tensor:
        return self.classifier(dropout(torch.relu(self.pre_classifier(hidden[:, 0]))))


class RobertaHead(ShapedHead):
    def __init__(self, hidden: int, classes: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, classes)

    def forward(self, hidden: torch.Tensor, dropout: nn.Module) -> torch.Tensor:
        return self.out_proj(dropout(torch.tanh(self.dense(dropout(hidden[:, 0])))))


HEADS = {"bert": BertHead, "distilbert": DistilBertHead, "roberta": RobertaHead, "linear": nn.Linear}


def classify(head: nn.Module, hidden: torch.Tensor, dropout: nn.Module) -> torch.Tensor:
    if isinstance(head, ShapedHead):
        return head(hidden, dropout)
    return head(dropout(hidden[:, 0]))  # the linear shape (an nn.Linear, or its inference replacement)


def shape_for(model_type: str) -> str:
    return SHAPE_OF_MODEL_TYPE.get(model_type, "linear")


def copy_pretrained_pooler(head: nn.Module, encoder: nn.Module) -> None:
    """BERT's sequence classifier starts from the pretrained pooler; so does the mtl head of that shape."""
    pooler = getattr(getattr(encoder, "pooler", None), "dense", None)
    if isinstance(head, BertHead) and isinstance(pooler, nn.Linear):
        with torch.no_grad():
            head.pooler.weight.copy_(pooler.weight)
            head.pooler.bias.copy_(pooler.bias)
