"""The encoder's optimizer: layer-wise learning-rate decay and frozen layers."""

import pytest

from mtlcli.training.optim import freeze_layers, make_optimizer


def test_layer_lr_decay_and_freezing(backbone_dir):
    from mtlcli.backbones import load_encoder
    from mtlcli.model import MultiTaskModel
    from mtlcli.spec import ModelSpec

    model = MultiTaskModel(
        ModelSpec("tiny", {}, ["ner"], labels={"ner": ["O", "B-X"]}), load_encoder(str(backbone_dir), dropout=0.3)
    )
    assert model.encoder.config.hidden_dropout_prob == 0.3
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.01, layer_lr_decay=0.5)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["heads.ner.weight"])] == pytest.approx(1e-3)
    assert lr_of[id(named["encoder.encoder.layer.1.output.dense.weight"])] == pytest.approx(5e-4)
    assert lr_of[id(named["encoder.encoder.layer.0.output.dense.weight"])] == pytest.approx(2.5e-4)
    assert lr_of[id(named["encoder.embeddings.word_embeddings.weight"])] == pytest.approx(1.25e-4)
    freeze_layers(model, 1)
    assert not named["encoder.embeddings.word_embeddings.weight"].requires_grad
    assert not named["encoder.encoder.layer.0.output.dense.weight"].requires_grad
    assert named["encoder.encoder.layer.1.output.dense.weight"].requires_grad


def test_head_lr_mult_scales_the_heads_only(backbone_dir):
    from mtlcli.backbones import load_encoder
    from mtlcli.model import MultiTaskModel
    from mtlcli.spec import ModelSpec

    spec = ModelSpec("tiny", {}, ["ner", "qa"], labels={"ner": ["O", "B-X"]})
    model = MultiTaskModel(spec, load_encoder(str(backbone_dir)))
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.01, layer_lr_decay=0.5, head_lr_mult=10)
    group_of = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    for name in ("heads.ner.weight", "heads.ner.bias", "heads.qa.weight"):
        assert group_of[id(named[name])]["lr"] == pytest.approx(1e-2)
    assert group_of[id(named["heads.ner.bias"])]["weight_decay"] == 0.0
    assert group_of[id(named["heads.ner.weight"])]["weight_decay"] == 0.01
    # the encoder keeps its layer-wise rates, its top (the pooler, above the last layer) included
    assert group_of[id(named["encoder.pooler.dense.weight"])]["lr"] == pytest.approx(1e-3)
    assert group_of[id(named["encoder.encoder.layer.1.output.dense.weight"])]["lr"] == pytest.approx(5e-4)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(named)
