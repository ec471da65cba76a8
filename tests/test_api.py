import pytest

import mtlcli.api as mtl
from mtlcli.errors import InputError
from mtlcli.tasks.ner import group_entities, split_words

TRICKY = [
    "Apple Inc. was founded by Steve Jobs in California.",
    "  Multiple   spaces\tand\ttabs  ",
    "Café déjà vu in Zürich — naïve 🙂 emoji!",
    "(Glued)punctuation,everywhere...Paris!",
    "Supercalifragilisticexpialidocious" * 3,
    "",
]


def test_group_entities_merges_runs_of_one_type():
    text = "Steve Jobs met Tim in New York"
    spans = [(0, 5), (6, 10), (11, 14), (15, 18), (19, 21), (22, 25), (26, 30)]
    tags = ["B-PER", "I-PER", "O", "I-PER", "O", "B-LOC", "I-LOC"]
    entities = group_entities(text, spans, tags, [0.9, 0.7, 1, 0.8, 1, 0.6, 0.4])
    assert [(e.text, e.type) for e in entities] == [("Steve Jobs", "PER"), ("Tim", "PER"), ("New York", "LOC")]
    assert entities[0].score == pytest.approx(0.8)
    assert [(e.text, e.type) for e in group_entities("a b", [(0, 1), (2, 3)], ["B-PER", "I-LOC"], [1, 1])] == [
        ("a", "PER"),
        ("b", "LOC"),
    ]


def test_api_trains_loads_and_predicts_with_exact_offsets(backbone_dir, tmp_path, ner_file, qa_file, cls_file):
    result = mtl.train(
        backbone=str(backbone_dir),
        ner_train=str(ner_file),
        qa_train=str(qa_file),
        cls_train=str(cls_file),
        epochs=1,
        output_dir=str(tmp_path / "run"),
        cache_dir="",
        qa_max_length=48,
        doc_stride=16,
    )
    model = mtl.load(result.output_dir / "last")
    assert model.tasks == ["ner", "qa", "cls"]
    for text, entities in zip(TRICKY, model.entities(TRICKY)):
        assert all(text[e.start : e.end] == e.text and e.text for e in entities)
    context = "The quick brown fox jumps over the lazy dog. " * 20 + "Apple was founded by Steve Jobs."
    answers = model.answer("Who founded Apple?", context, n_best=3)
    assert 1 <= len(answers) <= 3
    assert all(context[a.start : a.end] == a.text for a in answers)
    assert answers == sorted(answers, key=lambda a: -a.score)
    probabilities = model.classify(["Steve Jobs", "the dog"])
    assert all(set(p) == {"other", "person"} and sum(p.values()) == pytest.approx(1, abs=1e-4) for p in probabilities)
    with pytest.raises(InputError, match="empty"):
        model.answer("   ", context)


def test_words_follow_the_pretokenizer_with_offsets(backbone_dir):
    from mtlcli.backbones import load_tokenizer

    words = split_words("Paris, (France).", load_tokenizer(str(backbone_dir)))
    assert [w for w, _ in words] == ["Paris", ",", "(", "France", ")", "."]
