"""Tiny, self-contained backbones: a WordPiece tokenizer trained on the fly and a 2-layer BERT from a config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CORPUS = [
    "Apple Inc. was founded by Steve Jobs in California.",
    "Barack Obama was born in Hawaii and worked in Washington.",
    "Microsoft is based in Redmond, near Seattle.",
    "Angela Merkel met Emmanuel Macron in Paris on Monday.",
    "The Eiffel Tower is in Paris, the capital of France.",
    "Google was founded by Larry Page and Sergey Brin.",
    "Who founded Apple? Where is Microsoft based? When was it founded?",
    "The quick brown fox jumps over the lazy dog. Café, naïve, déjà vu — 東京 🙂",
]

NER_SENTENCES = [
    (["Apple", "hired", "Steve", "Jobs", "."], ["B-ORG", "O", "B-PER", "I-PER", "O"]),
    (["Paris", "is", "in", "France", "."], ["B-LOC", "O", "O", "B-LOC", "O"]),
    (["Google", "was", "founded", "by", "Larry", "Page"], ["B-ORG", "O", "O", "O", "B-PER", "I-PER"]),
    (["Angela", "Merkel", "visited", "Washington"], ["B-PER", "I-PER", "O", "B-LOC"]),
    (["Microsoft", "is", "near", "Seattle"], ["B-ORG", "O", "O", "B-LOC"]),
    (["Barack", "Obama", "was", "born", "in", "Hawaii"], ["B-PER", "I-PER", "O", "O", "O", "B-LOC"]),
    (["The", "dog", "jumps", "."], ["O", "O", "O", "O"]),
    (["Sergey", "Brin", "left", "Google"], ["B-PER", "I-PER", "O", "B-ORG"]),
]

QA_PAIRS = [
    ("Apple was founded by Steve Jobs in California.", "Who founded Apple?", "Steve Jobs"),
    ("Microsoft is based in Redmond, near Seattle.", "Where is Microsoft based?", "Redmond"),
    ("The Eiffel Tower is in Paris, the capital of France.", "What is the capital of France?", "Paris"),
    ("Google was founded by Larry Page and Sergey Brin.", "Who founded Google with Larry Page?", "Sergey Brin"),
    ("Barack Obama was born in Hawaii.", "Where was Obama born?", "Hawaii"),
    ("Angela Merkel met Emmanuel Macron in Paris on Monday.", "When did Merkel meet Macron?", "Monday"),
    ("The quick brown fox jumps over the lazy dog.", "What does the fox jump over?", "the lazy dog"),
    ("Seattle is a city in Washington.", "Which state is Seattle in?", "Washington"),
]


@pytest.fixture(scope="session")
def backbone_dir(tmp_path_factory) -> Path:
    """A saved tiny BERT (random weights) with a tokenizer trained on CORPUS: loads like any local backbone."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=special)
    tokenizer.train_from_iterator(CORPUS * 4, trainer)
    fast = BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    # post-processing adds [CLS]/[SEP] and pair type ids, as for a real BERT
    from tokenizers.processors import TemplateProcessing

    fast.backend_tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", fast.cls_token_id), ("[SEP]", fast.sep_token_id)],
    )
    fast.save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        pad_token_id=fast.pad_token_id,
    )
    import torch

    torch.manual_seed(0)  # the same tiny backbone in every session
    BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture
def ner_file(tmp_path) -> Path:
    path = tmp_path / "ner.conll"
    blocks = ["\n".join(f"{t} {g}" for t, g in zip(tokens, tags)) for tokens, tags in NER_SENTENCES]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def write_qa_file(path: Path) -> Path:
    """QA_PAIRS as a SQuAD v1.1 file, one article per question."""
    data = [
        {
            "title": f"article {i}",
            "paragraphs": [
                {
                    "context": c,
                    "qas": [{"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": c.index(a)}]}],
                }
            ],
        }
        for i, (c, q, a) in enumerate(QA_PAIRS)
    ]
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


@pytest.fixture
def qa_file(tmp_path) -> Path:
    return write_qa_file(tmp_path / "qa.json")


@pytest.fixture
def cls_file(tmp_path) -> Path:
    path = tmp_path / "cls.csv"
    rows = ["text,label"] + [
        f'"{" ".join(tokens)}",{"person" if "B-PER" in tags else "other"}' for tokens, tags in NER_SENTENCES
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True, scope="session")
def private_cache_dir(tmp_path_factory):
    """mtl keeps machine checks in ~/.cache/mtl (mtlcli.invariant): the tests keep theirs to themselves."""
    import os

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
SIZES = {
    "bert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "distilbert": dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64),
    "roberta": dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, type_vocab_size=1
    ),
}  # as roberta-base: one segment type


def tiny_model_dir(
    kind: str, backbone_dir, directory, tasks=("ner", "qa", "cls"), old_cls_head=False, segments=True, adapters=""
):
    """A saved mtl model on a random tiny encoder of the given type (the shipped backbone configs' types); with
    `old_cls_head`, classification as models saved before the heads took the backbone's shape; `adapters`: a
    task_adapters setting ("lora:r=4"), each task's adapter made non-zero (a fresh LoRA adapter changes nothing)."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from mtlcli import tasks as registry
    from mtlcli.adapters import resolve_adapters
    from mtlcli.model import MultiTaskModel, save_model
    from mtlcli.spec import ModelSpec

    tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
    config = AutoConfig.for_model(
        kind, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, max_position_embeddings=130, **SIZES[kind]
    )
    torch.manual_seed(0)
    labels = {"ner": LABELS} | ({"cls": ["a", "b"]} if "cls" in tasks else {})
    heads = {} if old_cls_head else {"cls": registry.get("cls").head_settings(config.to_dict())}
    spec = ModelSpec(
        backbone=f"tiny-{kind}",
        backbone_config=config.to_dict(),
        tasks=list(tasks),
        labels=labels,
        max_length=64,
        qa_max_length=96,
        doc_stride=32,
        heads=heads,
        segment_ids=segments and config.type_vocab_size > 1 if kind != "distilbert" else False,
        adapters=resolve_adapters(adapters, config.to_dict()),
    )
    model = MultiTaskModel(spec, AutoModel.from_config(config)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_B." in name:
                param.normal_(std=0.05)
    save_model(model, tokenizer, directory)
    return model, tokenizer


@pytest.fixture(scope="session")
def tagging_model_dir(backbone_dir, tmp_path_factory):
    """A tiny random NER + QA + classification model whose NER head never says O: every text has entities."""
    import torch

    from mtlcli.model import save_model

    directory = tmp_path_factory.mktemp("serve") / "model"
    model, tokenizer = tiny_model_dir("bert", backbone_dir, directory)
    with torch.no_grad():
        model.heads["ner"].bias[model.spec.labels["ner"].index("O")] = -1e4
    save_model(model, tokenizer, directory)
    return directory
