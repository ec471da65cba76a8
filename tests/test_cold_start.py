"""A one-shot `mtl predict-*` imports only what it uses: on an ONNX export neither torch nor transformers; on a
BERT-type model torch but not transformers (mtlcli.inference.bert, mtlcli.inference.fast_tokenizer). Both
stand-ins give exactly what transformers gives."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import NER_SENTENCES, QA_PAIRS
from test_export import tiny_model_dir

from mtlcli.data.examples import ClsExample, NerExample, QaExample

HEAVY = ("torch", "transformers")


@pytest.fixture(scope="module")
def model_dir(backbone_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cold")
    model, tokenizer = tiny_model_dir("bert", backbone_dir, root / "model", tasks=("ner", "qa", "cls"))
    return root / "model"


@pytest.fixture(scope="module")
def onnx_dir(model_dir):
    from mtlcli.export.onnx import export_onnx

    out = model_dir.with_name("onnx")
    out.mkdir()
    export_onnx(model_dir, out)
    return out


def imported_after_predict_ner(model: str) -> tuple[dict, list[str]]:
    """`mtl predict-ner MODEL TEXT --format jsonl` in a fresh interpreter: its record, and which of torch and
    transformers it imported."""
    code = (
        "import sys; from mtlcli.cli.main import app\n"
        f"try: app(['predict-ner', {model!r}, 'Steve Jobs founded Apple in California', '--format', 'jsonl'])\n"
        "except SystemExit: pass\n"
        f"print(sorted({{k.split('.')[0] for k in sys.modules}} & set({HEAVY!r})), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), eval(result.stderr.strip().splitlines()[-1])


def test_predict_on_an_onnx_export_imports_neither_torch_nor_transformers(onnx_dir):
    record, heavy = imported_after_predict_ner(str(onnx_dir))
    assert record["text"] == "Steve Jobs founded Apple in California" and isinstance(record["entities"], list)
    assert heavy == []


def test_predict_on_a_bert_model_imports_torch_but_not_transformers(model_dir):
    record, heavy = imported_after_predict_ner(str(model_dir))
    assert record["text"] == "Steve Jobs founded Apple in California" and heavy == ["torch"]


def test_the_fast_tokenizer_gives_what_transformers_gives(model_dir):
    """Every featurization of the tasks (words, windows with overflow and stride, segment ids, truncation)."""
    from transformers import AutoTokenizer

    from mtlcli.inference.fast_tokenizer import FastTokenizer
    from mtlcli.tasks.cls import text_features
    from mtlcli.tasks.ner import split_words, word_features
    from mtlcli.tasks.qa import window_features

    ours, theirs = FastTokenizer(model_dir), AutoTokenizer.from_pretrained(str(model_dir))
    assert (ours.cls_token_id, ours.sep_token_id, ours.pad_token_id) == (
        theirs.cls_token_id,
        theirs.sep_token_id,
        theirs.pad_token_id,
    )
    sentences = [NerExample(str(i), tokens, tags) for i, (tokens, tags) in enumerate(NER_SENTENCES)]
    labels = {tag: 0 for _, tags in NER_SENTENCES for tag in tags}
    assert word_features(sentences, ours, labels, 6) == word_features(sentences, theirs, labels, 6)  # windows
    text = "Café, naïve: Steve Jobs's Apple — 東京 🙂 (1976)."
    assert split_words(text, ours) == split_words(text, theirs)
    long = [QaExample(str(i), q, (c + " ") * 6) for i, (c, q, _) in enumerate(QA_PAIRS)]
    for segments in (False, True):
        a, b = (
            window_features(long, ours, 40, 12, False, segments),
            window_features(long, theirs, 40, 12, False, segments),
        )
        assert a == b and len(a.input_ids) > len(long)  # several windows per question
    texts = [ClsExample(str(i), " ".join(tokens), "x") for i, (tokens, _) in enumerate(NER_SENTENCES)]
    assert text_features(texts, ours, {}, 5) == text_features(texts, theirs, {}, 5)


def test_the_native_bert_encoder_equals_transformers_bitwise(model_dir):
    from mtlcli.model import load_model

    lean, _ = load_model(model_dir, lean=True)
    full, _ = load_model(model_dir)
    assert type(lean.encoder).__module__ == "mtlcli.inference.bert" and type(full.encoder).__name__ == "BertModel"
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, lean.encoder.config.vocab_size, (3, 21), generator=generator)
    segments = (torch.arange(21) >= 9).long().expand(3, -1)
    padded = (torch.arange(21) < torch.tensor([[21], [14], [3]])).long()
    with torch.inference_mode():
        for mask in (padded, torch.ones_like(ids)):
            for types in (None, segments):
                for precision in (torch.float32, torch.bfloat16):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == torch.bfloat16):
                        assert torch.equal(lean.encode(ids, mask, types), full.encode(ids, mask, types))


def test_other_encoders_are_left_to_transformers():
    from transformers import AutoConfig

    from mtlcli.inference.bert import native_encoder

    assert native_encoder(AutoConfig.for_model("distilbert").to_dict()) is None
    assert native_encoder(AutoConfig.for_model("roberta").to_dict()) is None
    assert native_encoder(AutoConfig.for_model("bert", hidden_act="gelu_new").to_dict()) is None
    assert native_encoder(AutoConfig.for_model("bert", num_hidden_layers=1).to_dict()) is not None
