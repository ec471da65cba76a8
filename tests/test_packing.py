"""Packed NER training batches: the sentences of a shuffled batch share rows and are computed as on their own."""

from __future__ import annotations

import pytest
import torch
from conftest import NER_SENTENCES
from test_trainer import make_run

from mtlcli.training.batching import collate
from mtlcli.training.packing import PACK_IDS, pack_layout, packed_attention, packs


def test_every_sentence_is_placed_once_in_rows_as_wide_as_the_longest():
    lengths = [30, 5, 7, 12, 30, 3, 9, 20, 1]
    rows = pack_layout(lengths)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= max(lengths) for row in rows)
    assert len(rows) == -(-sum(lengths) // max(lengths))  # 117 tokens in rows of 30: 4 rows, no more


def test_positions_restart_and_sentences_attend_only_to_themselves():
    pack_ids = torch.tensor([[1, 1, 1, 2, 2, 0]])
    mask, positions = packed_attention(pack_ids, torch.float32)
    assert positions.tolist() == [[0, 1, 2, 0, 1, 0]]
    seen = (mask[0, 0] == 0).int().tolist()
    assert seen[0] == [1, 1, 1, 0, 0, 0] and seen[3] == [0, 0, 0, 1, 1, 0]
    assert seen[5] == [0, 0, 0, 0, 0, 1]  # padding sees padding: no row is all masked


def test_a_packed_batch_gives_each_sentence_the_logits_and_loss_it_gets_unpacked(backbone_dir, tmp_path, qa_file):
    long = tuple(sum((list(column) for column in columns), []) for columns in zip(*NER_SENTENCES[:3]))
    ner_file = tmp_path / "ner.conll"  # the short sentences and one as long as three: they share its rows
    ner_file.write_text("\n\n".join("\n".join(f"{t} {g}" for t, g in zip(*s)) for s in [*NER_SENTENCES, long]) + "\n")
    run = make_run(backbone_dir, tmp_path, ner_file, qa_file)
    assert packs(run.core.encoder) and run.streams["ner"].packed and not run.streams["qa"].packed
    features = run.streams["ner"].features
    rows = list(range(len(features)))
    plain = collate(features, rows, "ner", run.pad_id)
    packed = collate(features, rows, "ner", run.pad_id, packed=True)
    assert packed["input_ids"].shape[0] < plain["input_ids"].shape[0]  # fewer rows
    assert int(packed["attention_mask"].sum()) == int(plain["attention_mask"].sum())  # the same tokens
    with torch.no_grad():
        out_plain, out_packed = run.core("ner", **plain), run.core("ner", **packed)
    assert float(out_packed["loss"]) == pytest.approx(float(out_plain["loss"]), rel=1e-5)
    labelled_plain = out_plain["logits"][plain["labels"] != -100]
    labelled_packed = out_packed["logits"][packed["labels"] != -100]
    assert sorted(labelled_plain.sum(-1).tolist()) == pytest.approx(sorted(labelled_packed.sum(-1).tolist()), abs=1e-4)
    assert PACK_IDS not in plain


def test_packed_ner_batches_are_shuffled_not_grouped_by_length(backbone_dir, tmp_path, ner_file, qa_file):
    grouped = make_run(backbone_dir, tmp_path / "a", ner_file, qa_file, "pack_sequences=false").streams["ner"]
    packed = make_run(backbone_dir, tmp_path / "b", ner_file, qa_file).streams["ner"]
    unpacked = make_run(
        backbone_dir, tmp_path / "c", ner_file, qa_file, "pack_sequences=false", "group_by_length=false"
    )
    batches = [[packed.next_rows() for _ in range(4)], [unpacked.streams["ner"].next_rows() for _ in range(4)]]
    assert batches[0] == batches[1]
    assert not grouped.packed and packed.packed


def test_training_on_a_cpu_computes_attention_eagerly_with_the_same_results(backbone_dir, tmp_path, ner_file, qa_file):
    run = make_run(backbone_dir, tmp_path, ner_file, qa_file)
    core, features = run.core, run.streams["ner"].features
    batch = collate(features, list(range(len(features))), "ner", run.pad_id, packed=True)
    implementation = lambda: core.encoder.config._attn_implementation  # noqa: E731
    with torch.no_grad():
        core.eval()
        assert implementation() == "sdpa"
        inference = float(core("ner", **batch)["loss"])
        core.train()  # no dropout in these tests: the same computation, eager
        assert implementation() == "eager"
        training = float(core("ner", **batch)["loss"])
    assert training == pytest.approx(inference, rel=1e-5)
    core.eval()
    assert implementation() == "sdpa"
    core.encoder.set_attn_implementation("eager")  # chosen by hand (the ONNX export): kept
    core.train()
    core.eval()
    assert implementation() == "eager"
